package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"berth/fscopy"
)

// CopyUp fills an empty volume directory dst with the tree at src (the
// image's content at the mount's destination, in the container's mounted
// root filesystem), as Docker does for a new volume: owners, modes,
// timestamps, extended attributes, symlinks, hard links and device nodes
// are kept, and dst takes src's own owner and mode. Nothing is copied when
// dst is not empty or src is not a directory; copied reports whether
// anything was. Symlinks are copied as links, never followed.
func CopyUp(ctx context.Context, src, dst string) (copied bool, err error) {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy-up from %s: %w", src, err)
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		return false, fmt.Errorf("copy-up into %s: %w", dst, err)
	}
	if len(ents) > 0 {
		return false, nil
	}
	if err := fscopy.Tree(ctx, src, dst); err != nil {
		return false, fmt.Errorf("copy-up into %s: %w", dst, err)
	}
	return true, nil
}
