package archive

import (
	"errors"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// Parent directories are resolved with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) from root's descriptor: one syscall that follows
// symlinks only while they stay below root and refuses absolute ones and
// ".." above root, the rule os.Root applies component by component. Where
// openat2 is missing (Linux before 5.6, or filtered by seccomp) os.Root
// does the resolving.
//
// Resolved directories stay open in a small most-recently-used cache, since
// a layer lists a directory's entries together: consecutive entries cost no
// resolution at all. A cached descriptor keeps naming the directory it was
// opened on, so the cache is dropped whenever Apply removes a directory or
// a symlink, the only changes that can make a path resolve elsewhere
// (creating a name where none was cannot change a path that resolved).

const (
	dirCacheSize  = 16
	resolveFlags  = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	resolveRetry  = 16 // openat2 says EAGAIN when a rename raced a ".."
	dirOpenFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	fileOpenFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// openDir is an open directory under root. pins counts users between
// dir and release; an entry evicted or dropped while pinned is closed by
// its last release.
type openDir struct {
	rel  string
	fd   int
	pins int
	dead bool
	root bool
}

// dirCache holds open directories, most recently used first.
type dirCache struct {
	ents []*openDir
}

func (c *dirCache) get(rel string) *openDir {
	for i, e := range c.ents {
		if e.rel == rel {
			copy(c.ents[1:i+1], c.ents[:i])
			c.ents[0] = e
			return e
		}
	}
	return nil
}

func (c *dirCache) add(rel string, fd int) *openDir {
	e := &openDir{rel: rel, fd: fd}
	c.ents = append(c.ents, nil)
	copy(c.ents[1:], c.ents)
	c.ents[0] = e
	for len(c.ents) > dirCacheSize {
		c.discard(c.ents[len(c.ents)-1])
		c.ents = c.ents[:len(c.ents)-1]
	}
	return e
}

// drop forgets every cached directory; see the comment at the top.
func (c *dirCache) drop() {
	for _, e := range c.ents {
		c.discard(e)
	}
	c.ents = c.ents[:0]
}

func (c *dirCache) discard(e *openDir) {
	if e.pins > 0 {
		e.dead = true
		return
	}
	unix.Close(e.fd)
}

func (c *dirCache) release(e *openDir) {
	if e.root {
		return
	}
	e.pins--
	if e.dead && e.pins == 0 {
		unix.Close(e.fd)
	}
}

// dir returns the directory rel (cleaned, relative to root), pinned until
// release. With create, missing directories are made 0755 as Docker does,
// each inside its resolved parent.
func (a *applier) dir(rel string, create bool) (*openDir, error) {
	if rel == "." {
		return a.rootDir, nil
	}
	if e := a.cache.get(rel); e != nil {
		e.pins++
		return e, nil
	}
	fd, err := a.resolve(rel)
	if err != nil && create && errors.Is(err, unix.ENOENT) {
		p, perr := a.dir(path.Dir(rel), true)
		if perr != nil {
			return nil, perr
		}
		err = unix.Mkdirat(p.fd, path.Base(rel), 0o755)
		a.cache.release(p)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "mkdirat", Path: rel, Err: err}
		}
		fd, err = a.resolve(rel)
	}
	if err != nil {
		return nil, err
	}
	e := a.cache.add(rel, fd)
	e.pins++
	return e, nil
}

// resolve opens the directory rel below root, following symlinks that
// stay below root. O_DIRECTORY matters: opening a FIFO a layer planted
// would block.
func (a *applier) resolve(rel string) (int, error) {
	if !a.noOpenat2 {
		how := unix.OpenHow{Flags: dirOpenFlags, Resolve: resolveFlags}
		for range resolveRetry {
			fd, err := unix.Openat2(a.rootDir.fd, rel, &how)
			switch {
			case err == nil:
				return fd, nil
			case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
				a.noOpenat2 = true // openat2 is missing or filtered out
			default:
				return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
			}
			break
		}
	}
	f, err := a.root.OpenFile(rel, dirOpenFlags, 0)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "dup", Path: rel, Err: err}
	}
	return fd, nil
}

// withParent runs fn with the directory that holds rel (root itself for
// "."); see dir for create.
func (a *applier) withParent(entry, rel string, create bool, fn func(dfd int) error) error {
	parent := path.Dir(rel)
	if rel == "." {
		parent = "."
	}
	d, err := a.dir(parent, create)
	if err != nil {
		return resolveError(entry, err)
	}
	defer a.cache.release(d)
	return fn(d.fd)
}

// resolveError classifies a failure to resolve a path under root. os.Root
// reports escapes with a non-errno error and openat2 with EXDEV; loops and
// non-directory parents are malformed layers too.
func resolveError(entry string, err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) || errno == unix.ELOOP || errno == unix.ENOTDIR || errno == unix.EXDEV {
		return fmt.Errorf("layer entry %q: parent path leaves root or is not a directory: %v: %w", entry, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("layer entry %q: %w", entry, err)
}
