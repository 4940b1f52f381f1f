package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func TestBlkioDeviceNumbers(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mknod of a block device node needs root")
	}
	blk := filepath.Join(t.TempDir(), "blk")
	if err := unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 42))); err != nil {
		t.Fatal(err)
	}
	got, err := BlkioDeviceNumbers(container.Resources{
		BlkioWeightDevice:  []*blkiodev.WeightDevice{{Path: blk, Weight: 300}},
		BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: blk, Rate: 1 << 20}},
	})
	if err != nil || got[blk] != (DeviceNumber{7, 42}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, p := range []string{"/dev/null", filepath.Join(t.TempDir(), "missing")} {
		if _, err := BlkioDeviceNumbers(container.Resources{BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: p, Rate: 1}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want invalid argument", p, err)
		}
	}
}

func TestBlockIOInSpec(t *testing.T) {
	t.Parallel()
	const dev = "/dev/vdz"
	numbers := map[string]DeviceNumber{dev: {254, 16}}
	s := mustGenerate(t, busyboxInput(func(in *Input) {
		in.BlkioDevices = numbers
		in.HostConfig.BlkioWeight = 500
		in.HostConfig.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: dev, Weight: 200}}
		in.HostConfig.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: dev, Rate: 1 << 20}}
		in.HostConfig.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{{Path: dev, Rate: 100}}
	}))
	b := s.Linux.Resources.BlockIO
	if *b.Weight != 500 || len(b.WeightDevice) != 1 || *b.WeightDevice[0].Weight != 200 || b.WeightDevice[0].Major != 254 ||
		len(b.ThrottleReadBpsDevice) != 1 || b.ThrottleReadBpsDevice[0].Rate != 1<<20 || b.ThrottleReadBpsDevice[0].Minor != 16 ||
		len(b.ThrottleWriteIOPSDevice) != 1 || b.ThrottleWriteIOPSDevice[0].Rate != 100 || b.ThrottleWriteBpsDevice != nil {
		t.Fatalf("blockIO = %+v", b)
	}
	tests := []struct {
		name   string
		change func(*Input)
		kind   error
	}{
		{"unresolved path", func(in *Input) {
			in.HostConfig.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: dev, Rate: 1}}
		}, errdefs.ErrFailedPrecondition},
		{"weight out of range", func(in *Input) { in.HostConfig.BlkioWeight = 5 }, errdefs.ErrInvalidArgument},
		{"device weight out of range", func(in *Input) {
			in.BlkioDevices = numbers
			in.HostConfig.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: dev, Weight: 2000}}
		}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Generate(busyboxInput(tt.change)); !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
		})
	}
}
