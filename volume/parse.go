package volume

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/mount"
)

// DefaultDriver is the only volume driver: directories under the data root,
// optionally backed by a mount (type/device/o), as Docker's "local".
const DefaultDriver = "local"

// MountPoint is one resolved mount of a container, persisted with it. Plan
// produces it from the request; Attach fills in a volume's Name, Driver and
// Source; RuntimeMount turns it into the OCI spec's mount.
type MountPoint struct {
	Type mount.Type `json:"type"`
	// Name is the volume's name; "" in a plan means a new anonymous one.
	Name string `json:"name,omitempty"`
	// Source is the host path: a bind's source or the volume's _data.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	Driver      string `json:"driver,omitempty"`
	// Mode is the -v mode string as given ("ro,Z"), shown by inspect.
	Mode        string            `json:"mode,omitempty"`
	RW          bool              `json:"rw"`
	Propagation mount.Propagation `json:"propagation,omitempty"`
	// CopyData asks for the image's content at Destination to be copied
	// into the volume when it is empty; cleared once done.
	CopyData bool `json:"copy_data,omitempty"`
	// CreateSource makes a missing bind source at start (-v binds do,
	// --mount binds only with bind-create-host-path).
	CreateSource bool `json:"create_source,omitempty"`
	// Spec is the request this mount point came from; an empty
	// Spec.Source marks an anonymous volume, which `rm -v` removes.
	Spec mount.Mount `json:"spec"`
}

// Anonymous reports whether the mount asked for a volume without a name.
func (mp MountPoint) Anonymous() bool {
	return mp.Type == mount.TypeVolume && mp.Spec.Source == ""
}

var (
	rwModes          = map[string]bool{"rw": true, "ro": true}
	labelModes       = map[string]bool{"z": true, "Z": true}
	consistencyModes = map[string]bool{"consistent": true, "cached": true, "delegated": true}
	propagations     = map[mount.Propagation]bool{
		mount.PropagationPrivate: true, mount.PropagationRPrivate: true,
		mount.PropagationSlave: true, mount.PropagationRSlave: true,
		mount.PropagationShared: true, mount.PropagationRShared: true,
	}
)

// validMode accepts Docker's -v modes: at most one each of rw/ro, z/Z, a
// propagation, nocopy and a consistency; SELinux labels are accepted and
// have no effect here.
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case rwModes[o]:
			rw++
		case labelModes[o]:
			label++
		case propagations[mount.Propagation(o)]:
			prop++
		case o == "nocopy":
			cp++
		case consistencyModes[o]:
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

func modeHas(mode string, want func(string) bool) (string, bool) {
	for _, o := range strings.Split(mode, ",") {
		if want(o) {
			return o, true
		}
	}
	return "", false
}

func invalidSpec(raw string) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s'", raw)
}

// ParseBind reads one HostConfig.Binds entry: "name:/dst[:mode]" (a named
// volume), "/host:/dst[:mode]" (a bind mount) or "/dst" (an anonymous
// volume). driver is HostConfig.VolumeDriver.
func ParseBind(raw, driver string) (MountPoint, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return MountPoint{}, invalidSpec(raw)
	}
	var spec mount.Mount
	var mode string
	switch len(arr) {
	case 1:
		spec.Target = arr[0]
	case 2:
		if validMode(arr[1]) {
			// "/dst:ro": a volume needs a source to carry a mode.
			return MountPoint{}, invalidSpec(raw)
		}
		spec.Source, spec.Target = arr[0], arr[1]
	case 3:
		spec.Source, spec.Target, mode = arr[0], arr[1], arr[2]
	default:
		return MountPoint{}, invalidSpec(raw)
	}
	if !validMode(mode) {
		return MountPoint{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s': invalid mode: %s", raw, mode)
	}
	spec.Type = mount.TypeVolume
	if path.IsAbs(spec.Source) {
		spec.Type = mount.TypeBind
	}
	_, ro := modeHas(mode, func(o string) bool { return o == "ro" })
	spec.ReadOnly = ro
	if driver != "" && spec.Type == mount.TypeVolume {
		spec.VolumeOptions = &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: driver}}
	}
	if _, ok := modeHas(mode, func(o string) bool { return o == "nocopy" }); ok {
		if spec.VolumeOptions == nil {
			spec.VolumeOptions = &mount.VolumeOptions{}
		}
		spec.VolumeOptions.NoCopy = true
	}
	if p, ok := modeHas(mode, func(o string) bool { return propagations[mount.Propagation(o)] }); ok {
		spec.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(p)}
	}
	mp, err := parseSpec(spec, false)
	if err != nil {
		return MountPoint{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s': %s", raw, err.Error())
	}
	mp.Mode = mode
	// -v creates a missing host directory, as Docker always has.
	mp.CreateSource = mp.Type == mount.TypeBind
	return mp, nil
}

// ParseMount reads one HostConfig.Mounts entry (--mount).
func ParseMount(m mount.Mount) (MountPoint, error) {
	mp, err := parseSpec(m, true)
	if err != nil {
		return MountPoint{}, err
	}
	if m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.CreateMountpoint {
		mp.CreateSource = true
	}
	return mp, nil
}

// configError is Docker's wording for a mount that cannot be used.
func configError(t mount.Type, format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid mount config for type %q: %s", t, fmt.Sprintf(format, args...))
}

func validateTarget(m mount.Mount) error {
	if m.Target == "" {
		return configError(m.Type, "field Target must not be empty")
	}
	if path.Clean(m.Target) == "/" {
		return configError(m.Type, "invalid specification: destination can't be '/'")
	}
	if !path.IsAbs(m.Target) {
		return configError(m.Type, "invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	return nil
}

func validateSpec(m mount.Mount, checkSource bool) error {
	if err := validateTarget(m); err != nil {
		return err
	}
	switch m.Type {
	case mount.TypeBind:
		return validateBind(m, checkSource)
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return configError(m.Type, "field BindOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return configError(m.Type, "field TmpfsOptions must not be specified")
		}
		if v := m.VolumeOptions; v != nil && v.Subpath != "" {
			if m.Source == "" {
				return configError(m.Type, "must not set Subpath when using anonymous volumes")
			}
			if !filepath.IsLocal(v.Subpath) {
				return configError(m.Type, "subpath must be a relative path within the volume")
			}
		}
		if m.ReadOnly && m.Source == "" {
			return configError(m.Type, "must not set ReadOnly mode when using anonymous volumes")
		}
	case mount.TypeTmpfs:
		if m.BindOptions != nil {
			return configError(m.Type, "field BindOptions must not be specified")
		}
		if m.VolumeOptions != nil {
			return configError(m.Type, "field VolumeOptions must not be specified")
		}
		if m.Source != "" {
			return configError(m.Type, "field Source must not be specified")
		}
		if _, err := tmpfsData(m.TmpfsOptions, m.ReadOnly); err != nil {
			return configError(m.Type, "%s", err.Error())
		}
	case "":
		return configError(m.Type, "mount type unknown")
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid mount config for type %q: mount type not supported", m.Type)
	}
	return nil
}

func validateBind(m mount.Mount, checkSource bool) error {
	if m.Source == "" {
		return configError(m.Type, "field Source must not be empty")
	}
	if b := m.BindOptions; b != nil && b.Propagation != "" && !propagations[b.Propagation] {
		return configError(m.Type, "invalid propagation mode: %s", b.Propagation)
	}
	if m.VolumeOptions != nil {
		return configError(m.Type, "field VolumeOptions must not be specified")
	}
	if m.TmpfsOptions != nil {
		return configError(m.Type, "field TmpfsOptions must not be specified")
	}
	if !path.IsAbs(m.Source) {
		return configError(m.Type, "invalid mount path: '%s' mount path must be absolute", m.Source)
	}
	if !checkSource || (m.BindOptions != nil && m.BindOptions.CreateMountpoint) {
		return nil
	}
	if _, err := os.Stat(m.Source); err != nil {
		return configError(m.Type, "bind source path does not exist: %s", m.Source)
	}
	return nil
}

// parseSpec validates a mount request and makes its mount point;
// checkSource demands that a bind's source exist (--mount, not -v).
func parseSpec(m mount.Mount, checkSource bool) (MountPoint, error) {
	if err := validateSpec(m, checkSource); err != nil {
		return MountPoint{}, err
	}
	mp := MountPoint{Type: m.Type, RW: !m.ReadOnly, Destination: path.Clean(m.Target), Spec: m}
	switch m.Type {
	case mount.TypeVolume:
		mp.Name = m.Source
		mp.CopyData = true
		if v := m.VolumeOptions; v != nil {
			if v.DriverConfig != nil {
				mp.Driver = v.DriverConfig.Name
			}
			mp.CopyData = !v.NoCopy
		}
	case mount.TypeBind:
		mp.Source = path.Clean(m.Source)
		mp.Propagation = mount.PropagationRPrivate
		if b := m.BindOptions; b != nil && b.Propagation != "" {
			mp.Propagation = b.Propagation
		}
	}
	return mp, nil
}

// ParseVolumesFrom reads a --volumes-from entry, "container[:ro|rw]",
// into the container and whether its mounts stay writable.
func ParseVolumesFrom(raw string) (string, bool, error) {
	if raw == "" {
		return "", false, errdefs.Errorf(errdefs.ErrInvalidArgument, "volumes-from specification cannot be an empty string")
	}
	id, mode, _ := strings.Cut(raw, ":")
	if mode == "" {
		return id, true, nil
	}
	_, prop := modeHas(mode, func(o string) bool { return propagations[mount.Propagation(o)] })
	_, nocopy := modeHas(mode, func(o string) bool { return o == "nocopy" })
	if !validMode(mode) || prop || nocopy {
		return "", false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid mode: %s", mode)
	}
	_, ro := modeHas(mode, func(o string) bool { return o == "ro" })
	return id, !ro, nil
}
