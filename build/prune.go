package build

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	buildtypes "github.com/moby/moby/api/types/build"
)

// Prune empties the build cache: the step records (the images they name
// stay, for `image prune`) and every RUN --mount=type=cache directory not
// in use by a running step.
func (b *Builder) Prune(ctx context.Context) (buildtypes.CachePruneReport, error) {
	var report buildtypes.CachePruneReport
	if _, err := b.forgetAll(); err != nil {
		return report, err
	}
	entries, err := os.ReadDir(b.mounts.root)
	if err != nil {
		return report, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		name := e.Name()
		if strings.Contains(name, "-private-") {
			continue // in use by a running step; removed when it ends
		}
		unlock, ok := b.mounts.tryLock(name)
		if !ok {
			continue
		}
		dir := filepath.Join(b.mounts.root, name)
		size := dirSize(dir)
		err := os.RemoveAll(dir)
		unlock()
		if err != nil {
			return report, err
		}
		report.CachesDeleted = append(report.CachesDeleted, name)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
