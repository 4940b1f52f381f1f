package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// WhiteoutMode says what kind of directory a layer is applied to or diffed
// from, and so how deletions are represented on disk.
type WhiteoutMode int

const (
	// WhiteoutDelete: root is a full tree (vfs, btrfs, an overlay merged
	// mount). Whiteouts delete; no marker is ever left on disk.
	WhiteoutDelete WhiteoutMode = iota
	// WhiteoutOverlay: root is an overlayfs upperdir. `.wh.x` becomes a 0/0
	// character device named x and `.wh..wh..opq` becomes the xattr
	// trusted.overlay.opaque="y" on its directory.
	WhiteoutOverlay
)

func (m WhiteoutMode) String() string {
	switch m {
	case WhiteoutDelete:
		return "delete"
	case WhiteoutOverlay:
		return "overlay"
	}
	return fmt.Sprintf("whiteout-mode(%d)", int(m))
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Mode WhiteoutMode
	// NoDevices refuses block and character device entries (other than the
	// overlay whiteouts Apply makes itself).
	NoDevices bool
	// Logger receives notes about data the filesystem cannot hold (an xattr
	// on a filesystem without xattr support). Nil discards them.
	Logger *slog.Logger
}

// Marker names of the OCI layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	overlayOpaque  = "trusted.overlay.opaque"
	paxXattr       = "SCHILY.xattr."
	blockSize      = 512
	copyBufSize    = 1 << 20
)

// Touch flags: what this layer did to a path.
const (
	touchAdded    = 1 << iota // the layer has an entry for the path
	touchAncestor             // the layer has an entry below the path
)

type dirTime struct {
	rel string
	ts  [2]unix.Timespec
}

type applier struct {
	ctx context.Context
	// root resolves paths where openat2 cannot and removes trees; rootDir
	// and cache serve everything else (see resolve.go).
	root      *os.Root
	rootDir   *openDir
	cache     dirCache
	noOpenat2 bool
	opts      ApplyOptions
	log       *slog.Logger
	touch     map[string]uint8
	dirs      []dirTime
	buf       []byte
}

// Apply reads an uncompressed layer tar from r and applies it under root,
// returning the number of tar bytes read (the whole stream, including any
// padding after the end-of-archive marker, so the caller's digest of r
// covers every byte). Every write is confined to root: entries whose path
// escapes root, directly or through a symlink, are refused with
// errdefs.ErrInvalidArgument. Absolute and relative symlink targets are
// data and are written as they are.
//
// Apply assumes nothing else modifies root while it runs.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	return applyTar(ctx, root, r, opts, false)
}

// applyTar is Apply; noOpenat2 makes it resolve paths as it does on kernels
// without openat2.
func applyTar(ctx context.Context, root string, r io.Reader, opts ApplyOptions, noOpenat2 bool) (int64, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return 0, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	defer rt.Close()
	rootFD, err := unix.Open(root, dirOpenFlags, 0)
	if err != nil {
		return 0, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	a := &applier{
		ctx:       ctx,
		root:      rt,
		rootDir:   &openDir{rel: ".", fd: rootFD, root: true},
		noOpenat2: noOpenat2,
		opts:      opts,
		log:       opts.Logger,
		touch:     make(map[string]uint8),
		buf:       make([]byte, copyBufSize),
	}
	defer a.cache.drop()
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	cr := &countingReader{r: r}
	if err := a.readAll(cr); err != nil {
		return cr.n, err
	}
	// Digest-computing callers need the rest of the stream (GNU tar pads to
	// a 10 KiB record); read it through the bounded buffer.
	if _, err := io.CopyBuffer(io.Discard, onlyReader{cr}, a.buf); err != nil {
		return cr.n, fmt.Errorf("layer tar: read trailer: %w", err)
	}
	return cr.n, a.setDirTimes()
}

func (a *applier) readAll(cr *countingReader) error {
	tr := tar.NewReader(cr)
	var dataEnd int64
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer tar: truncated or corrupt at byte %d: %w: %w", cr.n, err, errdefs.ErrInvalidArgument)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(io.Discard, onlyReader{tr}, a.buf); err != nil {
			return fmt.Errorf("layer tar entry %q: %w: %w", hdr.Name, err, errdefs.ErrInvalidArgument)
		}
		dataEnd = cr.n
	}
	// tar.Reader reports io.EOF both for the end-of-archive marker and for a
	// stream cut at a header boundary; only the first has a zero block
	// after the last entry's padded data.
	if cr.n-roundUp(dataEnd) < blockSize {
		return fmt.Errorf("layer tar: truncated after %d bytes, no end-of-archive marker: %w", cr.n, errdefs.ErrInvalidArgument)
	}
	return nil
}

func roundUp(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// cleanName validates a tar path and returns it cleaned, relative to root
// ("." for root itself).
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("layer entry with empty name: %w", errdefs.ErrInvalidArgument)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("layer entry %q: absolute path: %w", name, errdefs.ErrInvalidArgument)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("layer entry %q: NUL in name: %w", name, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("layer entry %q: path escapes root: %w", name, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func (a *applier) entry(hdr *tar.Header, content io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if strings.Contains("/"+path.Dir(rel), "/"+whiteoutMeta) {
		return nil // inside AUFS metadata (.wh..wh.plnk/...)
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(hdr, rel, base)
	}
	if isSparse(hdr) {
		// Holes expand to zeros without consuming input, so a tiny layer
		// could fill the disk; layer producers must not emit sparse files.
		return fmt.Errorf("layer entry %q: sparse files are not supported: %w", hdr.Name, errdefs.ErrInvalidArgument)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont,
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if a.opts.NoDevices {
			return fmt.Errorf("layer entry %q: device nodes are not allowed: %w", hdr.Name, errdefs.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("layer entry %q: unsupported tar type %q: %w", hdr.Name, hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("layer entry %q: root must be a directory: %w", hdr.Name, errdefs.ErrInvalidArgument)
		}
		if err := a.fileAttrs(a.rootDir.fd, hdr); err != nil {
			return err
		}
		a.dirs = append(a.dirs, dirTime{rel: ".", ts: [2]unix.Timespec(headerTimes(hdr))})
		return nil
	}
	a.markAdded(rel)
	return a.withParent(hdr.Name, rel, true, func(dfd int) error {
		return a.create(dfd, path.Base(rel), rel, hdr, content)
	})
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// markAdded records rel and its ancestors so that an opaque marker met later
// in the same layer keeps them.
func (a *applier) markAdded(rel string) {
	a.touch[rel] |= touchAdded
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if a.touch[d]&touchAncestor != 0 {
			break
		}
		a.touch[d] |= touchAncestor
	}
}

func (a *applier) whiteout(hdr *tar.Header, rel, base string) error {
	dir := path.Dir(rel)
	if base == whiteoutOpaque {
		if a.opts.Mode == WhiteoutOverlay {
			return a.overlayOpaque(hdr.Name, dir)
		}
		// Resolving dir first refuses a marker below a symlink that leaves
		// root; the removal itself never follows one.
		d, err := a.dir(dir, false)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return resolveError(hdr.Name, err)
		}
		if d != nil {
			a.cache.release(d)
		}
		return a.deleteOpaque(hdr.Name, dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("layer entry %q: malformed whiteout: %w", hdr.Name, errdefs.ErrInvalidArgument)
	}
	target := path.Join(dir, name)
	if a.touch[target]&touchAdded != 0 {
		return nil // whiteouts hide lower layers only, never this layer's entries
	}
	if a.opts.Mode == WhiteoutOverlay {
		return a.withParent(hdr.Name, target, true, func(dfd int) error {
			return a.overlayWhiteout(dfd, name, target, hdr)
		})
	}
	a.cache.drop()
	if err := a.root.RemoveAll(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return resolveError(hdr.Name, err)
	}
	return nil
}

func (a *applier) overlayWhiteout(dfd int, name, target string, hdr *tar.Header) error {
	if err := a.removeExisting(dfd, name, target, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := unix.Mknodat(dfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("layer entry %q: whiteout device: %w", hdr.Name, err)
	}
	if err := unix.Fchownat(dfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown whiteout: %w", hdr.Name, err)
	}
	if err := unix.UtimesNanoAt(dfd, name, headerTimes(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: whiteout times: %w", hdr.Name, err)
	}
	return nil
}

func (a *applier) overlayOpaque(entry, dir string) error {
	return a.withParent(entry, dir, true, func(pfd int) error {
		base := path.Base(dir)
		if dir == "." {
			base = "."
		}
		err := unix.Mkdirat(pfd, base, 0o755)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("layer entry %q: create opaque directory: %w", entry, err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("layer entry %q: %w", entry, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("layer entry %q: opaque marker in a non-directory: %w", entry, errdefs.ErrInvalidArgument)
		}
		if err := unix.Lsetxattr(procPath(pfd, base), overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("layer entry %q: set %s: %w", entry, overlayOpaque, err)
		}
		return nil
	})
}

// deleteOpaque removes every lower entry below dir, keeping what this layer
// has already written there (an opaque marker acts as if it came before its
// siblings, whatever the tar order).
func (a *applier) deleteOpaque(entry, dir string) error {
	d, err := a.openDirNoFollow(entry, dir)
	if err != nil || d == nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("layer entry %q: read %s: %w", entry, dir, err)
	}
	for _, n := range names {
		child := path.Join(dir, n)
		switch t := a.touch[child]; {
		case t != 0:
			// Kept, but a directory this layer wrote over a lower one
			// still holds lower children (dir over dir keeps contents).
			if err := a.deleteOpaque(entry, child); err != nil {
				return err
			}
		default:
			a.cache.drop()
			if err := a.root.RemoveAll(child); err != nil {
				return resolveError(entry, err)
			}
		}
	}
	return nil
}

// openDirNoFollow opens rel as a directory without following a final
// symlink; it returns nil when rel is absent or not a directory.
func (a *applier) openDirNoFollow(entry, rel string) (*os.File, error) {
	if rel == "." {
		d, err := a.root.Open(".")
		return d, err
	}
	var out *os.File
	err := a.withParent(entry, rel, false, func(pfd int) error {
		fd, err := unix.Openat(pfd, path.Base(rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		out = os.NewFile(uintptr(fd), rel)
		return nil
	})
	if err != nil && errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	return out, err
}

// setDirTimes runs last because writing children moves a directory's
// mtime. A directory listed twice takes its last header's times.
func (a *applier) setDirTimes() error {
	done := make(map[string]bool, len(a.dirs))
	for i := len(a.dirs) - 1; i >= 0; i-- {
		dt := a.dirs[i]
		if done[dt.rel] {
			continue
		}
		done[dt.rel] = true
		err := a.withParent(dt.rel, dt.rel, false, func(pfd int) error {
			base := path.Base(dt.rel)
			if dt.rel == "." {
				base = "."
			}
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return nil // replaced by a later entry of this layer
			}
			return unix.UtimesNanoAt(pfd, base, dt.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("layer entry %q: set directory times: %w", dt.rel, err)
		}
	}
	return nil
}

// procPath names base inside the open directory dir for the path-only
// syscalls (l*xattr) without resolving dir's path again.
func procPath(dfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// onlyReader and onlyWriter hide ReaderFrom/WriterTo so io.CopyBuffer uses
// the caller's bounded buffer.
type onlyReader struct{ io.Reader }

type onlyWriter struct{ io.Writer }
