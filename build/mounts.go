package build

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"berth/errdefs"
	"berth/fscopy"
	"berth/mount"

	securejoin "github.com/cyphar/filepath-securejoin"
	mounttypes "github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/go-digest"
)

// mountSpec is one RUN --mount, BuildKit's syntax. Its fields are part of
// the step's cache key.
type mountSpec struct {
	Type     string
	Target   string
	Source   string `json:",omitempty"`
	From     string `json:",omitempty"`
	ID       string `json:",omitempty"`
	ReadOnly bool
	Sharing  string `json:",omitempty"`
	Mode     string `json:",omitempty"`
	UID      string `json:",omitempty"`
	GID      string `json:",omitempty"`
	Size     string `json:",omitempty"`
}

// parseMount reads "type=cache,target=/root/.cache,sharing=locked".
func parseMount(s string) (mountSpec, error) {
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return mountSpec{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: %v", s, err)
	}
	m := mountSpec{Type: "bind"}
	rw := ""
	for _, f := range fields {
		k, v, hasValue := strings.Cut(strings.TrimSpace(f), "=")
		switch k = strings.ToLower(k); k {
		case "ro", "readonly":
			rw = strconv.FormatBool(hasValue && v == "false")
		case "rw", "readwrite":
			rw = strconv.FormatBool(!hasValue || v != "false")
		default:
			if !m.set(k, v) {
				return mountSpec{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: unknown key %q", s, k)
			}
		}
	}
	switch m.Type {
	case "bind":
		m.ReadOnly = rw != "true"
	case "cache", "tmpfs":
		m.ReadOnly = rw == "false"
	}
	return m, m.check(s)
}

// set sets the field a key names, reporting whether it knows the key.
func (m *mountSpec) set(k, v string) bool {
	fields := map[string]*string{"type": &m.Type, "target": &m.Target, "dst": &m.Target, "destination": &m.Target,
		"source": &m.Source, "src": &m.Source, "from": &m.From, "id": &m.ID, "sharing": &m.Sharing,
		"mode": &m.Mode, "uid": &m.UID, "gid": &m.GID, "size": &m.Size}
	switch p, ok := fields[k]; {
	case ok:
		*p = v
		if k == "type" {
			m.Type = strings.ToLower(v)
		}
		return true
	case k == "required" || k == "env":
		return true // secret mounts' keys; the type is refused below
	}
	return false
}

func (m mountSpec) check(s string) error {
	switch m.Type {
	case "bind", "cache", "tmpfs":
	case "secret", "ssh":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=type=%s needs BuildKit's session, which the classic build protocol does not carry", m.Type)
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: unknown mount type %q", s, m.Type)
	}
	switch {
	case m.Target == "":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: a target is required", s)
	case m.Sharing != "" && m.Sharing != "shared" && m.Sharing != "private" && m.Sharing != "locked":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: sharing must be shared, private or locked", s)
	case m.Type == "cache" && m.From != "":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount=%s: a cache mount cannot start from another stage", s)
	}
	return nil
}

// setupMounts prepares a RUN's mounts; release undoes them.
func (s *stage) setupMounts(ctx context.Context, r *runStep) (_ []mounttypes.Mount, release func(), err error) {
	var undo []func()
	release = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	var out []mounttypes.Mount
	if r.script != nil {
		dir, err := s.scriptDir(r.script)
		if err != nil {
			return nil, release, err
		}
		out = append(out, mounttypes.Mount{Type: mounttypes.TypeBind, Source: dir, Target: "/dev/pipes", ReadOnly: true})
	}
	for _, m := range r.mounts {
		target := m.Target
		if !path.IsAbs(target) {
			target = path.Join("/", s.cfg.Config.WorkingDir, target)
		}
		switch m.Type {
		case "tmpfs":
			size, _ := strconv.ParseInt(m.Size, 10, 64)
			out = append(out, mounttypes.Mount{Type: mounttypes.TypeTmpfs, Target: target, TmpfsOptions: &mounttypes.TmpfsOptions{SizeBytes: size}})
		case "cache":
			dir, done, err := s.j.b.mounts.get(m)
			if err != nil {
				return nil, release, err
			}
			undo = append(undo, done)
			out = append(out, mounttypes.Mount{Type: mounttypes.TypeBind, Source: dir, Target: target, ReadOnly: m.ReadOnly})
		case "bind":
			src, done, err := s.bindSource(ctx, m)
			if err != nil {
				return nil, release, err
			}
			undo = append(undo, done)
			out = append(out, mounttypes.Mount{Type: mounttypes.TypeBind, Source: src, Target: target, ReadOnly: m.ReadOnly})
		}
	}
	return out, release, nil
}

// bindSource finds a bind mount's source in the context (extracted for
// the step, so writes to a writable one are thrown away, as BuildKit's
// are) or in another stage's or image's files (mounted read-only; a
// writable bind gets a copy).
func (s *stage) bindSource(ctx context.Context, m mountSpec) (string, func(), error) {
	rel := cleanRel(m.Source)
	if c := path.Clean(strings.TrimPrefix(m.Source, "/")); c == ".." || strings.HasPrefix(c, "../") {
		return "", nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "--mount source %s is outside the build context", m.Source)
	}
	if m.From == "" {
		real, err := s.j.bc.Resolve(rel)
		if err == nil {
			_, err = s.j.bc.Lstat(real)
		}
		if err != nil {
			return "", nil, errdefs.Errorf(errdefs.ErrNotFound, "--mount source %s: not in the build context", m.Source)
		}
		scratch, err := os.MkdirTemp(s.j.work, "bind-")
		if err != nil {
			return "", nil, err
		}
		dst := filepath.Join(scratch, "src")
		if err := s.j.bc.extract(ctx, real, dst); err != nil {
			os.RemoveAll(scratch)
			return "", nil, fmt.Errorf("--mount source %s: %w", m.Source, err)
		}
		return dst, func() { os.RemoveAll(scratch) }, nil
	}
	id, err := s.j.copyFrom(ctx, m.From, s.st.Index, s.out)
	if err != nil {
		return "", nil, err
	}
	root, done, err := s.j.b.mountImage(ctx, id)
	if err != nil {
		return "", nil, err
	}
	host, err := securejoin.SecureJoin(root, rel)
	if err == nil {
		_, err = os.Stat(host)
	}
	if err != nil {
		done()
		return "", nil, errdefs.Errorf(errdefs.ErrNotFound, "--mount source %s: %v", m.Source, err)
	}
	if m.ReadOnly {
		return host, done, nil
	}
	scratch, err := os.MkdirTemp(s.j.work, "bind-")
	if err == nil {
		err = copyTree(ctx, host, scratch)
	}
	done()
	if err != nil {
		return "", nil, fmt.Errorf("--mount source %s: copy: %w", m.Source, err)
	}
	mounted := scratch
	if fi, err := os.Stat(host); err == nil && !fi.IsDir() {
		mounted = filepath.Join(scratch, filepath.Base(host))
	}
	return mounted, func() { os.RemoveAll(scratch) }, nil
}

// copyTree copies src (a directory or a file) into dst.
func copyTree(ctx context.Context, src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, filepath.Base(src)), os.O_CREATE|os.O_WRONLY, fi.Mode())
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		return errors.Join(err, out.Close())
	}
	return fscopy.Tree(ctx, src, dst)
}

// mountImage mounts an image's files read-only until release.
func (b *Builder) mountImage(ctx context.Context, id digest.Digest) (string, func(), error) {
	dir, err := os.MkdirTemp(b.tmpRoot(), "mnt-")
	if err != nil {
		return "", nil, err
	}
	top := ""
	if id != "" {
		if top, err = b.images.TopLayer(ctx, id); err != nil {
			os.Remove(dir)
			return "", nil, err
		}
	}
	if top == "" {
		return dir, func() { os.Remove(dir) }, nil
	}
	key := viewPrefix + randomHex(8)
	mounts, err := b.sn.View(ctx, key, top)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	release := func() {
		if err := mount.UnmountAll(dir); err != nil {
			b.log.Warn("unmount build view", "dir", dir, "err", err)
			return
		}
		os.Remove(dir)
		b.sn.Remove(context.WithoutCancel(ctx), key)
	}
	if err := mount.All(mounts, dir); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

// cacheMounts are the directories of RUN --mount=type=cache, kept across
// builds under the builder's root.
type cacheMounts struct {
	root  string
	mu    sync.Mutex
	locks map[string]*sync.RWMutex
}

func newCacheMounts(root string) *cacheMounts {
	return &cacheMounts{root: root, locks: map[string]*sync.RWMutex{}}
}

// get returns the directory of a cache mount (its id, else its target),
// created with the mount's mode and owner, until release: a locked one
// exclusively, a shared one shared (so that prune leaves it alone).
func (c *cacheMounts) get(m mountSpec) (string, func(), error) {
	id := m.ID
	if id == "" {
		id = m.Target
	}
	name := digest.FromString(id).Encoded()
	dir := filepath.Join(c.root, name)
	release := func() {}
	switch m.Sharing {
	case "private":
		d, err := os.MkdirTemp(c.root, name+"-private-")
		if err != nil {
			return "", nil, err
		}
		dir, release = d, func() { os.RemoveAll(d) }
	case "locked":
		l := c.lock(name)
		l.Lock()
		release = l.Unlock
	default:
		l := c.lock(name)
		l.RLock()
		release = l.RUnlock
	}
	if err := c.prepare(dir, m); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

func (c *cacheMounts) lock(name string) *sync.RWMutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.locks[name]
	if !ok {
		l = &sync.RWMutex{}
		c.locks[name] = l
	}
	return l
}

// tryLock takes a cache mount's lock unless a step uses the mount.
func (c *cacheMounts) tryLock(name string) (func(), bool) {
	l := c.lock(name)
	if !l.TryLock() {
		return nil, false
	}
	return l.Unlock, true
}

func (c *cacheMounts) prepare(dir string, m mountSpec) error {
	if _, err := os.Stat(dir); err == nil && m.Sharing != "private" {
		return nil
	}
	mode := fs.FileMode(0o755)
	if m.Mode != "" {
		v, err := strconv.ParseUint(m.Mode, 8, 32)
		if err != nil {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cache mount mode %q: %v", m.Mode, err)
		}
		mode = fs.FileMode(v)
	}
	uid, gid := 0, 0
	for _, p := range []struct {
		s   string
		dst *int
	}{{m.UID, &uid}, {m.GID, &gid}} {
		if p.s == "" {
			continue
		}
		v, err := strconv.Atoi(p.s)
		if err != nil || v < 0 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cache mount uid/gid %q must be a number", p.s)
		}
		*p.dst = v
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache mount: %w", err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	return os.Lchown(dir, uid, gid)
}
