package volume

import (
	"reflect"
	"strings"
	"testing"

	"berth/testutil"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRuntimeMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mp   MountPoint
		want specs.Mount
		err  string
	}{
		{name: "volume", mp: MountPoint{Type: mount.TypeVolume, Destination: "/d", RW: true},
			want: specs.Mount{Destination: "/d", Type: "bind", Source: "/src", Options: []string{"rbind", "rprivate"}}},
		{name: "read-only bind", mp: MountPoint{Type: mount.TypeBind, Destination: "/d", Propagation: mount.PropagationRShared},
			want: specs.Mount{Destination: "/d", Type: "bind", Source: "/src", Options: []string{"rbind", "ro", "rshared"}}},
		{name: "non-recursive bind", mp: MountPoint{Type: mount.TypeBind, Destination: "/d", RW: true, Propagation: mount.PropagationRPrivate,
			Spec: mount.Mount{BindOptions: &mount.BindOptions{NonRecursive: true}}},
			want: specs.Mount{Destination: "/d", Type: "bind", Source: "/src", Options: []string{"bind", "rprivate"}}},
		{name: "tmpfs", mp: MountPoint{Type: mount.TypeTmpfs, Destination: "/t", RW: true,
			Spec: mount.Mount{TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777, Options: [][]string{{"exec"}}}}},
			want: specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=64m", "exec"}}},
		{name: "read-only tmpfs of odd size", mp: MountPoint{Type: mount.TypeTmpfs, Destination: "/t", Spec: mount.Mount{TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000}}},
			want: specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "ro", "size=1000"}}},
		{name: "tmpfs bad option", mp: MountPoint{Type: mount.TypeTmpfs, Destination: "/t", Spec: mount.Mount{TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"suid"}}}}},
			err: "invalid option: suid"},
	}
	for _, tc := range tests {
		got, err := tc.mp.RuntimeMount("/src")
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestRootfsPropagationAndWire(t *testing.T) {
	t.Parallel()
	mp := func(p mount.Propagation) MountPoint { return MountPoint{Type: mount.TypeBind, Propagation: p} }
	for _, tc := range []struct {
		mps  []MountPoint
		want string
	}{
		{nil, ""},
		{[]MountPoint{mp(mount.PropagationRPrivate), {Type: mount.TypeVolume}}, ""},
		{[]MountPoint{mp(mount.PropagationSlave)}, "rslave"},
		{[]MountPoint{mp(mount.PropagationRSlave), mp(mount.PropagationShared)}, "shared"},
	} {
		if got := RootfsPropagation(tc.mps); got != tc.want {
			t.Errorf("RootfsPropagation(%v) = %q, want %q", tc.mps, got, tc.want)
		}
	}
	w := MountPoint{Type: mount.TypeVolume, Name: "v", Source: "/s", Destination: "/d", Driver: "local", Mode: "z", RW: true, CopyData: true}.Wire()
	if w != (container.MountPoint{Type: mount.TypeVolume, Name: "v", Source: "/s", Destination: "/d", Driver: "local", Mode: "z", RW: true}) {
		t.Errorf("Wire = %+v", w)
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{`/a\040b`: "/a b", `/tab\011x`: "/tab\tx", `/back\134slash`: `/back\slash`, `/odd\04`: `/odd\04`, `/x\999`: `/x\999`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckPropagation makes a private and a shared mount and asks for
// each propagation on each.
func TestCheckPropagation(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	mk := func(flag uintptr) string {
		dir := t.TempDir()
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		if err := unix.Mount("", dir, "", flag, ""); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	private, shared := mk(unix.MS_PRIVATE), mk(unix.MS_SHARED)
	for _, tc := range []struct {
		src  string
		p    mount.Propagation
		want string
	}{
		{private, mount.PropagationRPrivate, ""},
		{private, mount.PropagationRShared, "is mounted on " + private + " but it is not a shared mount"},
		{private, mount.PropagationSlave, "but it is not a shared or slave mount"},
		{shared, mount.PropagationShared, ""},
		{shared + "/", mount.PropagationRSlave, ""},
	} {
		err := CheckPropagation(tc.src, tc.p)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckPropagation(%s, %s) = %v, want %q", tc.src, tc.p, err, tc.want)
		}
	}
}
