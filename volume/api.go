package volume

import (
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"berth/errdefs"

	eventtypes "github.com/moby/moby/api/types/events"
	volumetypes "github.com/moby/moby/api/types/volume"
)

func (s *Service) wire(r *record) volumetypes.Volume {
	return volumetypes.Volume{
		Name: r.Name, Driver: r.Driver, Mountpoint: s.Path(r.Name), CreatedAt: r.CreatedAt.Format(time.RFC3339),
		Labels: r.Labels, Options: r.Options, Scope: "local",
	}
}

// VolumeCreate is `volume create`: a new volume, or the existing one of
// that name. Without a name it is anonymous.
func (s *Service) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (volumetypes.Volume, error) {
	if req.ClusterVolumeSpec != nil {
		return volumetypes.Volume{}, errdefs.Errorf(errdefs.ErrUnavailable, `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, err := s.create(req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return volumetypes.Volume{}, err
	}
	return s.wire(r), nil
}

// VolumeInspect is `volume inspect`.
func (s *Service) VolumeInspect(ctx context.Context, name string) (volumetypes.Volume, error) {
	r, err := s.get(name)
	if err != nil {
		return volumetypes.Volume{}, err
	}
	return s.wire(r), nil
}

// VolumeRemove is `volume rm`: refused while a container uses the volume;
// with force a missing volume is not an error.
func (s *Service) VolumeRemove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.remove(name)
	if force && errdefs.NotFound(err) {
		return nil
	}
	return err
}

// filter is a parsed volume filter set: every key must match, any value of
// a key may.
type filter struct {
	names, drivers, labels, notLabels []string
	dangling                          *bool
	all                               bool
}

func badFilter(k, v string) error {
	if v == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", k)
	}
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s=%s'", k, v)
}

func parseBool(k string, vals []string) (bool, error) {
	for _, v := range vals {
		switch v {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		default:
			return false, badFilter(k, v)
		}
	}
	return false, nil
}

// parseFilter accepts the keys in allowed; list takes name, driver,
// label, dangling; prune takes label, label! and all.
func parseFilter(in map[string][]string, allowed ...string) (*filter, error) {
	f := &filter{}
	for k, vals := range in {
		if !slices.Contains(allowed, k) {
			return nil, badFilter(k, "")
		}
		var err error
		switch k {
		case "name":
			f.names = vals
		case "driver":
			f.drivers = vals
		case "label":
			f.labels = vals
		case "label!":
			f.notLabels = vals
		case "dangling":
			var d bool
			d, err = parseBool(k, vals)
			f.dangling = &d
		case "all":
			f.all, err = parseBool(k, vals)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func labelMatch(labels map[string]string, v string) bool {
	k, want, hasV := strings.Cut(v, "=")
	got, ok := labels[k]
	return ok && (!hasV || got == want)
}

func nameMatch(name, pattern string) bool {
	if re, err := regexp.Compile(pattern); err == nil {
		return re.MatchString(name)
	}
	return strings.Contains(name, pattern)
}

func (f *filter) match(r *record, users int) bool {
	anyOf := func(vals []string, ok func(string) bool) bool {
		return vals == nil || slices.ContainsFunc(vals, ok)
	}
	return anyOf(f.names, func(v string) bool { return nameMatch(r.Name, v) }) &&
		anyOf(f.drivers, func(v string) bool { return v == r.Driver }) &&
		anyOf(f.labels, func(v string) bool { return labelMatch(r.Labels, v) }) &&
		!slices.ContainsFunc(f.notLabels, func(v string) bool { return labelMatch(r.Labels, v) }) &&
		(f.dangling == nil || *f.dangling == (users == 0))
}

// VolumeList is `volume ls`, sorted by name.
func (s *Service) VolumeList(ctx context.Context, filters map[string][]string) ([]volumetypes.Volume, error) {
	f, err := parseFilter(filters, "name", "driver", "label", "dangling")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.all()
	if err != nil {
		return nil, err
	}
	out := []volumetypes.Volume{}
	for _, r := range recs {
		if f.match(r, len(s.refs[r.Name])) {
			out = append(out, s.wire(r))
		}
	}
	return out, nil
}

// VolumesPrune is `volume prune`: unused anonymous volumes, or every
// unused volume with the filter all=true.
func (s *Service) VolumesPrune(ctx context.Context, filters map[string][]string) (volumetypes.PruneReport, error) {
	f, err := parseFilter(filters, "label", "label!", "all")
	if err != nil {
		return volumetypes.PruneReport{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.all()
	if err != nil {
		return volumetypes.PruneReport{}, err
	}
	report := volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		if _, anon := r.Labels[AnonymousLabel]; (!anon && !f.all) || len(s.refs[r.Name]) > 0 || !f.match(r, 0) {
			continue
		}
		size := dirSize(s.Path(r.Name))
		if err := s.remove(r.Name); err != nil {
			s.log.Warn("prune volume", "volume", r.Name, "err", err)
			continue
		}
		report.VolumesDeleted = append(report.VolumesDeleted, r.Name)
		report.SpaceReclaimed += uint64(max(size, 0))
	}
	if s.events != nil {
		s.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)})
	}
	return report, nil
}

// DiskUsage is the volumes' part of `system df`: each volume's size and
// how many containers use it.
func (s *Service) DiskUsage(ctx context.Context) (*volumetypes.DiskUsage, error) {
	s.mu.Lock()
	recs, err := s.all()
	users := map[string]int{}
	for _, r := range recs {
		users[r.Name] = len(s.refs[r.Name])
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	du := &volumetypes.DiskUsage{Items: []volumetypes.Volume{}}
	// Sizes are walked without the lock: a large volume must not hold up
	// containers starting.
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v := s.wire(r)
		v.UsageData = &volumetypes.UsageData{Size: dirSize(s.Path(r.Name)), RefCount: int64(users[r.Name])}
		du.Items = append(du.Items, v)
		du.TotalCount++
		du.TotalSize += max(v.UsageData.Size, 0)
		if users[r.Name] > 0 {
			du.ActiveCount++
		} else {
			du.Reclaimable += max(v.UsageData.Size, 0)
		}
	}
	return du, nil
}

// dirSize is the bytes held under dir, each hard-linked file once; -1 if
// it cannot be read.
func dirSize(dir string) int64 {
	var size int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += fi.Size()
		return nil
	})
	if err != nil {
		return -1
	}
	return size
}
