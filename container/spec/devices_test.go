package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestResolveDevices(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// A directory mapping maps every node below it.
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(dir, "sub/zero"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))); err != nil {
			t.Fatal(err)
		}
	}
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveDevices([]container.DeviceMapping{
		{PathOnHost: "/dev/null"},
		{PathOnHost: "/dev/zero", PathInContainer: "/dev/myzero", CgroupPermissions: "rw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Device.Path != "/dev/null" || got[0].Access != "rwm" || got[0].Device.Major != 1 || got[0].Device.Minor != 3 ||
		got[1].Device.Path != "/dev/myzero" || got[1].Access != "rw" || got[1].Device.Minor != 5 || got[1].Device.Type != "c" {
		t.Fatalf("got %+v", got)
	}
	if os.Geteuid() == 0 {
		sub, err := ResolveDevices([]container.DeviceMapping{{PathOnHost: dir, PathInContainer: "/dev/x"}})
		if err != nil || len(sub) != 1 || sub[0].Device.Path != "/dev/x/sub/zero" || *sub[0].Device.FileMode != 0o600 {
			t.Fatalf("directory mapping: %+v, %v", sub, err)
		}
	}
	tests := []struct {
		name string
		m    container.DeviceMapping
		kind error
	}{
		{"missing", container.DeviceMapping{PathOnHost: filepath.Join(dir, "nope")}, errdefs.ErrNotFound},
		{"regular file", container.DeviceMapping{PathOnHost: regular}, errdefs.ErrInvalidArgument},
		{"bad mode", container.DeviceMapping{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}, errdefs.ErrInvalidArgument},
		{"repeated mode", container.DeviceMapping{PathOnHost: "/dev/null", CgroupPermissions: "rr"}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ResolveDevices([]container.DeviceMapping{tt.m}); !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
		})
	}
}

func TestMappedDeviceInSpec(t *testing.T) {
	t.Parallel()
	devs, err := ResolveDevices([]container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}})
	if err != nil {
		t.Fatal(err)
	}
	s := mustGenerate(t, busyboxInput(func(in *Input) { in.Devices = devs }))
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/mynull" }) {
		t.Fatalf("device missing: %+v", s.Linux.Devices)
	}
	last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
	if !last.Allow || *last.Major != 1 || *last.Minor != 3 || last.Access != "rw" {
		t.Fatalf("rule = %+v", last)
	}
}
