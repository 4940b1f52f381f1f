package build

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"berth/archive"
	"berth/build/ignore"
	"berth/errdefs"
)

// maxDockerfile bounds the Dockerfile read into memory.
const maxDockerfile = 16 << 20

// buildContext is a build's context extracted into a directory.
type buildContext struct {
	dir  string
	root *os.Root
}

// receiveContext reads the request body into dir: a tar (any supported
// compression), or, when the body is not a tar, a bare Dockerfile, which
// becomes the only file of an otherwise empty context.
func receiveContext(ctx context.Context, body io.Reader, dir, dockerfile string) (*buildContext, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	plain, _, err := archive.DecompressStream(body)
	if err != nil {
		return nil, fmt.Errorf("build context: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	defer plain.Close()
	br := bufio.NewReaderSize(plain, 64<<10)
	head, _ := br.Peek(512)
	if len(head) > 0 && !isTar(head) {
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if err := writeBareDockerfile(br, filepath.Join(dir, filepath.Base(dockerfile))); err != nil {
			return nil, err
		}
	} else if len(head) > 0 {
		if _, err := archive.Apply(ctx, dir, br, archive.ApplyOptions{Mode: archive.WhiteoutDelete, NoDevices: true}); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &buildContext{dir: dir, root: root}, nil
}

func (c *buildContext) Close() error { return c.root.Close() }

// isTar reports whether a stream starts with a tar header: "ustar" at 257,
// or an all-zero block (an empty archive).
func isTar(head []byte) bool {
	if len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	return len(head) >= 512 && bytes.Count(head[:512], []byte{0}) == 512
}

func writeBareDockerfile(r io.Reader, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	_, err = io.Copy(f, io.LimitReader(r, maxDockerfile))
	return errors.Join(err, f.Close())
}

// readDockerfile returns the Dockerfile's text. Like Docker, a missing
// "Dockerfile" falls back to "dockerfile".
func (c *buildContext) readDockerfile(name string) (string, []byte, error) {
	if name == "" {
		name = "Dockerfile"
	}
	rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(name), "/"))
	b, err := c.readFile(rel)
	if errors.Is(err, fs.ErrNotExist) && name == "Dockerfile" {
		if b, err = c.readFile("dockerfile"); err == nil {
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

func (c *buildContext) readFile(rel string) ([]byte, error) {
	f, err := c.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	return io.ReadAll(io.LimitReader(f, maxDockerfile))
}

// applyIgnore removes what .dockerignore excludes from the context, the
// Dockerfile and .dockerignore included when they match: the docker CLI
// filters before sending, other clients may not.
func (c *buildContext) applyIgnore(ctx context.Context) error {
	raw, err := c.readFile(".dockerignore")
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
	// Excluded directories that an exception keeps a file in stay; those
	// left empty go after the walk, deepest first.
	var excludedDirs []string
	err = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if m.SkipDir(rel) {
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("apply .dockerignore: %w", err)
				}
				return filepath.SkipDir
			}
			if m.Excluded(rel) {
				excludedDirs = append(excludedDirs, p)
			}
			return nil
		}
		if m.Excluded(rel) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("apply .dockerignore: %w", err)
			}
		}
		return nil
	})
	for i := len(excludedDirs) - 1; err == nil && i >= 0; i-- {
		os.Remove(excludedDirs[i]) // fails, as it should, when not empty
	}
	return err
}
