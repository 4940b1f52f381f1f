package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"sync"
	"time"

	"berth/archive"
	"berth/build/ignore"
	"berth/errdefs"
)

// maxDockerfile bounds the Dockerfile read into memory.
const maxDockerfile = 16 << 20

// maxContextEntries bounds the files of a context kept in the index.
const maxContextEntries = 1 << 20

// ctxTree is a build context kept as the tar it arrived as: written to
// one file as it is read (one sequential write, where extracting would
// create every file), indexed by path, with each regular file's SHA-256
// taken on the way. COPY reads files from it by offset; RUN --mount
// binds from the context extract just what they mount.
type ctxTree struct {
	spool *os.File
	nodes map[string]*ctxNode // by clean relative path; "" is the root
	// kids maps a directory to its entry names; built on first use, as
	// stages built at once read the tree concurrently.
	kidsMu sync.Mutex
	kids   map[string][]string
}

type ctxNode struct {
	hdr    tar.Header
	offset int64  // of the content in the spool
	data   []byte // content kept in memory (a bare Dockerfile)
	sum    string
}

// receiveContext reads the request body: a tar (any supported
// compression), or, when the body is not a tar, a bare Dockerfile, which
// becomes the only file of an otherwise empty context.
func receiveContext(ctx context.Context, body io.Reader, spool, dockerfile string) (*ctxTree, error) {
	plain, _, err := archive.DecompressStream(body)
	if err != nil {
		return nil, fmt.Errorf("build context: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	defer plain.Close()
	f, err := os.Create(spool)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	t := &ctxTree{spool: f, nodes: map[string]*ctxNode{"": rootNode()}}
	br := bufio.NewReaderSize(plain, 64<<10)
	head, _ := br.Peek(512)
	if len(head) > 0 && !isTar(head) {
		data, err := io.ReadAll(io.LimitReader(br, maxDockerfile))
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("build context: %w", err)
		}
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		sum := sha256.Sum256(data)
		t.nodes[cleanRel(dockerfile)] = &ctxNode{hdr: tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)),
			ModTime: time.Now()}, data: data, sum: hex.EncodeToString(sum[:])}
		t.addParents(cleanRel(dockerfile))
		return t, nil
	}
	if err := t.index(ctx, br); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func rootNode() *ctxNode {
	return &ctxNode{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}
}

func (t *ctxTree) Close() error { return t.spool.Close() }

// index copies the tar into the spool and records every entry.
func (t *ctxTree) index(ctx context.Context, r io.Reader) error {
	cr := &countingWriter{w: t.spool}
	tr := tar.NewReader(io.TeeReader(r, cr))
	var links []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("build context: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := cleanRel(h.Name)
		if rel == "" || h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if len(t.nodes) > maxContextEntries {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "build context: more than %d entries", maxContextEntries)
		}
		n := &ctxNode{hdr: *h, offset: cr.n}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers still emit '\x00'
			n.hdr.Typeflag = tar.TypeReg
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			n.sum = hex.EncodeToString(sum.Sum(nil))
		case tar.TypeLink:
			links = append(links, rel)
		case tar.TypeDir, tar.TypeSymlink, tar.TypeFifo:
		default:
			continue // devices and the like have no place in a context
		}
		t.nodes[rel] = n
		t.addParents(rel)
	}
	// Hard links share their target's content.
	for _, rel := range links {
		n := t.nodes[rel]
		target, ok := t.nodes[cleanRel(n.hdr.Linkname)]
		if !ok || target.hdr.Typeflag != tar.TypeReg {
			delete(t.nodes, rel)
			continue
		}
		hdr := target.hdr
		hdr.Name = n.hdr.Name
		*n = ctxNode{hdr: hdr, offset: target.offset, data: target.data, sum: target.sum}
	}
	return nil
}

// addParents makes the directories above rel that the tar did not list.
func (t *ctxTree) addParents(rel string) {
	t.kids = nil
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.nodes[dir]; ok {
			return
		}
		t.nodes[dir] = &ctxNode{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (t *ctxTree) node(rel string) (*ctxNode, error) {
	n, ok := t.nodes[cleanRel(rel)]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: rel, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Lstat describes an entry; its Sys is the tar header.
func (t *ctxTree) Lstat(rel string) (fs.FileInfo, error) {
	n, err := t.node(rel)
	if err != nil {
		return nil, err
	}
	h := n.hdr
	h.Name = path.Base("/" + cleanRel(rel))
	return h.FileInfo(), nil
}

func (t *ctxTree) Readlink(rel string) (string, error) {
	n, err := t.node(rel)
	if err != nil {
		return "", err
	}
	if n.hdr.Typeflag != tar.TypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: rel, Err: errors.New("not a symlink")}
	}
	return n.hdr.Linkname, nil
}

func (t *ctxTree) Open(rel string) (io.ReadCloser, error) {
	n, err := t.node(rel)
	if err != nil {
		return nil, err
	}
	if n.data != nil {
		return io.NopCloser(bytes.NewReader(n.data)), nil
	}
	return io.NopCloser(io.NewSectionReader(t.spool, n.offset, n.hdr.Size)), nil
}

func (t *ctxTree) ReadDir(rel string) ([]string, error) {
	t.kidsMu.Lock()
	defer t.kidsMu.Unlock()
	if t.kids == nil {
		t.kids = map[string][]string{}
		for p := range t.nodes {
			if p != "" {
				dir := cleanRel(path.Dir("/" + p))
				t.kids[dir] = append(t.kids[dir], path.Base(p))
			}
		}
		for _, names := range t.kids {
			sort.Strings(names)
		}
	}
	return t.kids[cleanRel(rel)], nil
}

func (t *ctxTree) Resolve(rel string) (string, error) { return resolveIn(t, rel) }

func (t *ctxTree) Sum(rel string) (string, bool) {
	n, err := t.node(rel)
	if err != nil || n.hdr.Typeflag != tar.TypeReg {
		return "", false
	}
	return n.sum, true
}

// isTar reports whether a stream starts with a tar header: "ustar" at 257,
// or an all-zero block (an empty archive).
func isTar(head []byte) bool {
	if len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	return len(head) >= 512 && bytes.Count(head[:512], []byte{0}) == 512
}

// readDockerfile returns the Dockerfile's text. Like Docker, a missing
// "Dockerfile" falls back to "dockerfile".
func (t *ctxTree) readDockerfile(name string) (string, []byte, error) {
	if name == "" {
		name = "Dockerfile"
	}
	rel := cleanRel(name)
	b, err := t.readFile(rel)
	if errors.Is(err, fs.ErrNotExist) && name == "Dockerfile" {
		if b, err = t.readFile("dockerfile"); err == nil {
			rel = "dockerfile"
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Cannot locate specified Dockerfile: %s", name)
	case err != nil:
		return "", nil, fmt.Errorf("read Dockerfile %s: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	return rel, b, nil
}

func (t *ctxTree) readFile(rel string) ([]byte, error) {
	real, err := t.Resolve(rel)
	if err != nil {
		return nil, err
	}
	n, err := t.node(real)
	if err != nil {
		return nil, err
	}
	if n.hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	if n.hdr.Size > maxDockerfile {
		return nil, fmt.Errorf("%s is larger than %d bytes", rel, maxDockerfile)
	}
	r, err := t.Open(real)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// applyIgnore drops what .dockerignore excludes, the Dockerfile and
// .dockerignore included when they match: the docker CLI filters before
// sending, other clients may not. An excluded directory stays only if an
// exception keeps something below it.
func (t *ctxTree) applyIgnore() error {
	raw, err := t.readFile(".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	m, err := ignore.Read(bytes.NewReader(raw))
	if err != nil || m.Empty() {
		return err
	}
	var dirs []string
	for rel, n := range t.nodes {
		if rel == "" || !m.Excluded(rel) {
			continue
		}
		if n.hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, rel)
			continue
		}
		delete(t.nodes, rel)
	}
	// Deepest first, so that a directory emptied by its children goes too.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	t.kids = nil
	for _, d := range dirs {
		if kids, _ := t.ReadDir(d); len(kids) == 0 {
			delete(t.nodes, d)
			t.kids = nil
		}
	}
	return nil
}

// extract writes rel and what is below it into dst, for a bind mount.
func (t *ctxTree) extract(ctx context.Context, rel, dst string) error {
	return walkTree(t, rel, func(p string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		sub := ""
		switch {
		case p == rel:
		case rel == "":
			sub = "/" + p
		default:
			sub = p[len(rel):]
		}
		out := dst + sub
		switch m := fi.Mode(); {
		case m.IsDir():
			if err := os.MkdirAll(out, m.Perm()|0o700); err != nil {
				return err
			}
		case m&fs.ModeSymlink != 0:
			target, _ := t.Readlink(p)
			return os.Symlink(target, out)
		case m.IsRegular():
			return t.copyOut(p, out, m.Perm())
		}
		return nil
	})
}

func (t *ctxTree) copyOut(rel, dst string, perm fs.FileMode) error {
	r, err := t.Open(rel)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
