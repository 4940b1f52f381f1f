package spec

import (
	"fmt"

	"berth/errdefs"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DeviceNumber is a block device's major:minor.
type DeviceNumber struct{ Major, Minor int64 }

// BlkioDeviceNumbers stats every device path named by --blkio-weight-device
// and the --device-{read,write}-{bps,iops} options, for Input.BlkioDevices.
func BlkioDeviceNumbers(r container.Resources) (map[string]DeviceNumber, error) {
	out := map[string]DeviceNumber{}
	var paths []string
	for _, w := range r.BlkioWeightDevice {
		if w != nil {
			paths = append(paths, w.Path)
		}
	}
	for _, list := range [][]*blkiodev.ThrottleDevice{r.BlkioDeviceReadBps, r.BlkioDeviceWriteBps, r.BlkioDeviceReadIOps, r.BlkioDeviceWriteIOps} {
		for _, d := range list {
			if d != nil {
				paths = append(paths, d.Path)
			}
		}
	}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return nil, fmt.Errorf("blkio device %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return nil, fmt.Errorf("blkio device %s: not a block device: %w", p, errdefs.ErrInvalidArgument)
		}
		out[p] = DeviceNumber{Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev))}
	}
	return out, nil
}

// blockIO converts the blkio options; device paths are looked up in
// numbers (see BlkioDeviceNumbers). It returns nil when nothing is set.
func blockIO(r container.Resources, numbers map[string]DeviceNumber) (*specs.LinuxBlockIO, error) {
	b := &specs.LinuxBlockIO{}
	set := false
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Range of blkio weight is from 10 to 1000")
		}
		w := r.BlkioWeight
		b.Weight, set = &w, true
	}
	lookup := func(p string) (specs.LinuxBlockIODevice, error) {
		n, ok := numbers[p]
		if !ok {
			return specs.LinuxBlockIODevice{}, fmt.Errorf("blkio device %s: device number not resolved: %w", p, errdefs.ErrFailedPrecondition)
		}
		return specs.LinuxBlockIODevice{Major: n.Major, Minor: n.Minor}, nil
	}
	for _, w := range r.BlkioWeightDevice {
		if w == nil {
			continue
		}
		if w.Weight < 10 || w.Weight > 1000 {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid weight for device %s: range of blkio weight is from 10 to 1000", w.Path)
		}
		dev, err := lookup(w.Path)
		if err != nil {
			return nil, err
		}
		weight := w.Weight
		b.WeightDevice, set = append(b.WeightDevice, specs.LinuxWeightDevice{LinuxBlockIODevice: dev, Weight: &weight}), true
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			dev, err := lookup(d.Path)
			if err != nil {
				return nil, err
			}
			*t.out, set = append(*t.out, specs.LinuxThrottleDevice{LinuxBlockIODevice: dev, Rate: d.Rate}), true
		}
	}
	if !set {
		return nil, nil
	}
	return b, nil
}
