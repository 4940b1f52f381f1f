package volume

import (
	"reflect"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/mount"
)

func TestParseBind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		raw, driver string
		want        MountPoint
		err         string
	}{
		{raw: "data:/data", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/data", RW: true, CopyData: true,
			Spec: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data"}}},
		{raw: "data:/data/:ro,nocopy", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/data", Mode: "ro,nocopy",
			Spec: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data/", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}},
		{raw: "data:/data", driver: "local", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/data", Driver: "local", RW: true, CopyData: true,
			Spec: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "local"}}}}},
		{raw: dir + ":/src:rw,Z", want: MountPoint{Type: mount.TypeBind, Source: dir, Destination: "/src", Mode: "rw,Z", RW: true,
			Propagation: mount.PropagationRPrivate, CreateSource: true, Spec: mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/src"}}},
		{raw: "/no/such/dir:/src:ro,rslave", want: MountPoint{Type: mount.TypeBind, Source: "/no/such/dir", Destination: "/src", Mode: "ro,rslave",
			Propagation: mount.PropagationRSlave, CreateSource: true,
			Spec: mount.Mount{Type: mount.TypeBind, Source: "/no/such/dir", Target: "/src", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}}},
		{raw: "/anon", want: MountPoint{Type: mount.TypeVolume, Destination: "/anon", RW: true, CopyData: true, Spec: mount.Mount{Type: mount.TypeVolume, Target: "/anon"}}},
		{raw: "", err: "invalid volume specification: ''"},
		{raw: ":/x", err: "invalid volume specification: ':/x'"},
		{raw: "/data:ro", err: "invalid volume specification: '/data:ro'"},
		{raw: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
		{raw: "data:/data:rw,ro", err: "invalid volume specification: 'data:/data:rw,ro': invalid mode: rw,ro"},
		{raw: "data:/data:bogus", err: "invalid volume specification: 'data:/data:bogus': invalid mode: bogus"},
		{raw: "data:relative", err: `invalid volume specification: 'data:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute`},
		{raw: "/src:/", err: `invalid volume specification: '/src:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`},
	}
	for _, tc := range tests {
		got, err := ParseBind(tc.raw, tc.driver)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errdefs.InvalidArgument(err) {
				t.Errorf("ParseBind(%q): error %v, want %q (invalid argument)", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseBind(%q) =\n%+v, %v\nwant\n%+v", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		m    mount.Mount
		want MountPoint
		err  string
	}{
		{name: "bind", m: mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationShared}},
			want: MountPoint{Type: mount.TypeBind, Source: dir, Destination: "/x", Propagation: mount.PropagationShared}},
		{name: "bind missing source", m: mount.Mount{Type: mount.TypeBind, Source: "/x", Target: "/x"},
			err: `invalid mount config for type "bind": bind source path does not exist: /x`},
		{name: "bind create host path", m: mount.Mount{Type: mount.TypeBind, Source: dir + "/new", Target: "/x", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			want: MountPoint{Type: mount.TypeBind, Source: dir + "/new", Destination: "/x", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true}},
		{name: "bind relative source", m: mount.Mount{Type: mount.TypeBind, Source: "rel/dir", Target: "/x"},
			err: `invalid mount config for type "bind": invalid mount path: 'rel/dir' mount path must be absolute`},
		{name: "bind no source", m: mount.Mount{Type: mount.TypeBind, Target: "/x"}, err: `invalid mount config for type "bind": field Source must not be empty`},
		{name: "bind bad propagation", m: mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", BindOptions: &mount.BindOptions{Propagation: "sideways"}},
			err: `invalid mount config for type "bind": invalid propagation mode: sideways`},
		{name: "bind volume options", m: mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", VolumeOptions: &mount.VolumeOptions{}},
			err: `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{name: "volume", m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}},
			want: MountPoint{Type: mount.TypeVolume, Name: "v1", Destination: "/v", Driver: "local", RW: true, CopyData: true}},
		{name: "anonymous read-only", m: mount.Mount{Type: mount.TypeVolume, Target: "/v", ReadOnly: true},
			err: `invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes`},
		{name: "volume bind options", m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", BindOptions: &mount.BindOptions{}},
			err: `invalid mount config for type "volume": field BindOptions must not be specified`},
		{name: "volume subpath escapes", m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{Subpath: "../x"}},
			err: `invalid mount config for type "volume": subpath must be a relative path within the volume`},
		{name: "tmpfs", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
			want: MountPoint{Type: mount.TypeTmpfs, Destination: "/t", RW: true}},
		{name: "tmpfs with source", m: mount.Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/t"}, err: `invalid mount config for type "tmpfs": field Source must not be specified`},
		{name: "no target", m: mount.Mount{Type: mount.TypeTmpfs}, err: `invalid mount config for type "tmpfs": field Target must not be empty`},
		{name: "unknown type", m: mount.Mount{Type: "nfs", Target: "/n"}, err: `invalid mount config for type "nfs": mount type not supported`},
	}
	for _, tc := range tests {
		got, err := ParseMount(tc.m)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errdefs.InvalidArgument(err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		tc.want.Spec = tc.m
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got\n%+v, %v\nwant\n%+v", tc.name, got, err, tc.want)
		}
	}
}

func TestParseVolumesFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, id string
		rw      bool
		err     string
	}{
		{raw: "web", id: "web", rw: true},
		{raw: "web:ro", id: "web"},
		{raw: "web:rw,z", id: "web", rw: true},
		{raw: "", err: "volumes-from specification cannot be an empty string"},
		{raw: "web:rshared", err: "invalid mode: rshared"},
		{raw: "web:nocopy", err: "invalid mode: nocopy"},
		{raw: "web:wat", err: "invalid mode: wat"},
	}
	for _, tc := range tests {
		id, rw, err := ParseVolumesFrom(tc.raw)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil || id != tc.id || rw != tc.rw {
			t.Errorf("%q = %q, %v, %v; want %q, %v", tc.raw, id, rw, err, tc.id, tc.rw)
		}
	}
}
