package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"berth/errdefs"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// fileTree is where COPY and ADD read their sources: the build context
// (ctxTree, the tar as it arrived) or an image's files mounted on the
// host (dirTree). Paths are slash-separated and relative to the tree's
// root ("" is the root); symlinks never lead out of it.
type fileTree interface {
	Lstat(rel string) (fs.FileInfo, error)
	Readlink(rel string) (string, error)
	Open(rel string) (io.ReadCloser, error)
	// ReadDir lists a directory's entry names, sorted.
	ReadDir(rel string) ([]string, error)
	// Resolve follows the symlinks of rel, its last element included,
	// as a chroot into the tree would.
	Resolve(rel string) (string, error)
	// Sum is the hex SHA-256 of a regular file's content when the tree
	// knows it without reading the file.
	Sum(rel string) (string, bool)
}

// dirTree is a directory on the host.
type dirTree struct{ root string }

func (t dirTree) host(rel string) string { return filepath.Join(t.root, filepath.FromSlash(rel)) }

func (t dirTree) Lstat(rel string) (fs.FileInfo, error)  { return os.Lstat(t.host(rel)) }
func (t dirTree) Readlink(rel string) (string, error)    { return os.Readlink(t.host(rel)) }
func (t dirTree) Open(rel string) (io.ReadCloser, error) { return os.Open(t.host(rel)) }
func (t dirTree) Sum(string) (string, bool)              { return "", false }

func (t dirTree) ReadDir(rel string) ([]string, error) {
	entries, err := os.ReadDir(t.host(rel))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (t dirTree) Resolve(rel string) (string, error) {
	real, err := securejoin.SecureJoin(t.root, rel)
	if err != nil {
		return "", err
	}
	r, err := filepath.Rel(t.root, real)
	if err != nil {
		return "", err
	}
	return cleanRel(filepath.ToSlash(r)), nil
}

// cleanRel makes p a clean path relative to a root, never above it.
func cleanRel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// maxLinks bounds the symlinks one resolution follows.
const maxLinks = 255

// resolveIn follows symlinks through a tree one element at a time;
// ".." stops at the root and absolute targets start from it.
func resolveIn(t fileTree, rel string) (string, error) {
	todo := strings.Split(cleanRel(rel), "/")
	cur, hops := "", 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = cleanRel(path.Dir("/" + cur))
			continue
		}
		next := cleanRel(cur + "/" + part)
		fi, err := t.Lstat(next)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxLinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links: %w", rel, errdefs.ErrInvalidArgument)
		}
		target, err := t.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = ""
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, nil
}

// walkTree calls fn for rel and, depth first in name order, everything
// below it; fn returning fs.SkipDir skips a directory's contents.
func walkTree(t fileTree, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	fi, err := t.Lstat(rel)
	if err != nil {
		return err
	}
	if err := fn(rel, fi); err != nil || !fi.IsDir() {
		if errors.Is(err, fs.SkipDir) {
			return nil
		}
		return err
	}
	names, err := t.ReadDir(rel)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := walkTree(t, cleanRel(rel+"/"+n), fn); err != nil {
			return err
		}
	}
	return nil
}
