package volume

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// tmpfsData turns --mount tmpfs options into mount data: "ro", "mode=",
// "size=" (with the largest whole unit, as dockerd writes it) and the
// exec/noexec flags the API allows.
func tmpfsData(opt *mount.TmpfsOptions, readOnly bool) ([]string, error) {
	var out []string
	if readOnly {
		out = append(out, "ro")
	}
	if opt == nil {
		return out, nil
	}
	if opt.Mode != 0 {
		out = append(out, fmt.Sprintf("mode=%o", opt.Mode))
	}
	if opt.SizeBytes < 0 {
		return nil, fmt.Errorf("invalid tmpfs size: %d", opt.SizeBytes)
	}
	if size := opt.SizeBytes; size != 0 {
		suffix := ""
		for _, u := range []struct {
			s string
			n int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%u.n == 0 {
				size, suffix = size/u.n, u.s
				break
			}
		}
		out = append(out, "size="+strconv.FormatInt(size, 10)+suffix)
	}
	for _, o := range opt.Options {
		if len(o) < 1 || len(o) > 2 {
			return nil, fmt.Errorf("invalid option array length")
		}
		if o[0] != "exec" && o[0] != "noexec" {
			return nil, fmt.Errorf("invalid option: %s", o[0])
		}
		out = append(out, strings.Join(o, "="))
	}
	return out, nil
}

var opposite = map[string]string{"exec": "noexec", "noexec": "exec", "ro": "rw", "rw": "ro", "suid": "nosuid", "dev": "nodev"}

// RuntimeMount is the OCI mount for mp, whose host side is at source (a
// bind's source, or the volume's directory from Mount). Binds and volumes
// are rbinds; a bind's propagation is its own (rprivate by default), a
// volume's is rprivate.
func (mp MountPoint) RuntimeMount(source string) (specs.Mount, error) {
	switch mp.Type {
	case mount.TypeTmpfs:
		data, err := tmpfsData(mp.Spec.TmpfsOptions, !mp.RW)
		if err != nil {
			return specs.Mount{}, err
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		for _, o := range data {
			if opp, ok := opposite[o]; ok {
				opts = slices.DeleteFunc(opts, func(x string) bool { return x == opp })
			}
			opts = append(opts, o)
		}
		return specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	case mount.TypeBind, mount.TypeVolume:
	default:
		return specs.Mount{}, fmt.Errorf("mount %s: unsupported type %q", mp.Destination, mp.Type)
	}
	bind := "rbind"
	if b := mp.Spec.BindOptions; b != nil && b.NonRecursive {
		bind = "bind"
	}
	opts := []string{bind}
	if !mp.RW {
		opts = append(opts, "ro")
	}
	prop := mp.Propagation
	if prop == "" {
		prop = mount.PropagationRPrivate
	}
	opts = append(opts, string(prop))
	return specs.Mount{Destination: mp.Destination, Type: "bind", Source: source, Options: opts}, nil
}

// RootfsPropagation is the propagation the container's root needs for
// its mounts' propagation to work: shared for a shared bind, rslave for a
// slave one, "" (the runtime's default) otherwise.
func RootfsPropagation(mps []MountPoint) string {
	out := ""
	for _, mp := range mps {
		switch mp.Propagation {
		case mount.PropagationShared, mount.PropagationRShared:
			return "shared"
		case mount.PropagationSlave, mount.PropagationRSlave:
			out = "rslave"
		}
	}
	return out
}

// Wire is the mount point as inspect and ps show it.
func (mp MountPoint) Wire() container.MountPoint {
	return container.MountPoint{
		Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
		Driver: mp.Driver, Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation,
	}
}
