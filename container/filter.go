package container

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"berth/errdefs"
)

// listFilter is a parsed `ps --filter` set: every key must match, any
// value of a key may.
type listFilter struct {
	status, names, ids, labels, exited []string
	volumes                            []string        // names or destinations
	ancestors                          map[string]bool // image IDs
	before, since                      time.Time
}

func (s *Service) newFilter(ctx context.Context, in map[string][]string) (*listFilter, error) {
	f := &listFilter{}
	for key, vals := range in {
		switch key {
		case "status":
			for _, v := range vals {
				switch Status(v) {
				case StatusCreated, StatusRunning, StatusPaused, StatusRestarting, StatusRemoving, StatusExited, StatusDead:
				default:
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'status=%s'", v)
				}
			}
			f.status = vals
		case "name":
			f.names = vals
		case "id":
			f.ids = vals
		case "label":
			f.labels = vals
		case "volume":
			f.volumes = vals
		case "exited":
			for _, v := range vals {
				if _, err := strconv.Atoi(v); err != nil {
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'exited=%s'", v)
				}
			}
			f.exited = vals
		case "ancestor":
			f.ancestors = map[string]bool{}
			for _, v := range vals {
				if id, err := s.opts.Images.Resolve(ctx, v); err == nil {
					f.ancestors[id.String()] = true
				}
			}
		case "before", "since":
			for _, v := range vals {
				e, err := s.lookup(v)
				if err != nil {
					return nil, err
				}
				if key == "before" {
					f.before = e.created()
				} else {
					f.since = e.created()
				}
			}
		default:
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
		}
	}
	return f, nil
}

func anyOf(vals []string, ok func(string) bool) bool {
	if vals == nil {
		return true
	}
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return false
}

func (f *listFilter) match(rec *Record) bool {
	name := strings.TrimPrefix(rec.Name, "/")
	return anyOf(f.status, func(v string) bool { return string(rec.State.Status) == v }) &&
		anyOf(f.names, func(v string) bool {
			re, err := regexp.Compile(v)
			return err == nil && (re.MatchString(name) || re.MatchString(rec.Name))
		}) &&
		anyOf(f.ids, func(v string) bool { return strings.HasPrefix(rec.ID, v) }) &&
		anyOf(f.labels, func(v string) bool {
			k, want, hasV := strings.Cut(v, "=")
			got, ok := rec.Config.Labels[k]
			return ok && (!hasV || got == want)
		}) &&
		anyOf(f.exited, func(v string) bool {
			return rec.State.Status == StatusExited && strconv.Itoa(rec.State.ExitCode) == v
		}) &&
		(f.ancestors == nil || f.ancestors[rec.Image]) &&
		anyOf(f.volumes, func(v string) bool { return usesVolume(rec.Mounts, v) }) &&
		(f.before.IsZero() || rec.Created.Before(f.before)) &&
		(f.since.IsZero() || rec.Created.After(f.since))
}
