package archive

import (
	"context"
	"fmt"
	"os"
	"slices"
)

// ChangeKind is Docker's numbering for GET /containers/{id}/changes.
type ChangeKind int

// The kinds of change.
const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return fmt.Sprintf("change(%d)", int(k))
}

// Change is one entry of `docker diff`; Path is absolute ("/etc/passwd").
type Change struct {
	Path string
	Kind ChangeKind
}

// Changes lists what upper changed relative to lower, sorted by path.
//
// WhiteoutDelete: lower and upper are complete trees (lower "" = empty).
// WhiteoutOverlay: upper is an overlayfs upperdir; lower, when not "", is a
// complete view of the layers below (a read-only mount of the parent) and
// tells additions from modifications and lists what an opaque directory
// hid; with lower "" every upper entry is an addition.
func Changes(ctx context.Context, lower, upper string, mode WhiteoutMode) ([]Change, error) {
	var out []Change
	visit := func(kind ChangeKind, n *node) error {
		out = append(out, Change{Path: "/" + n.rel, Kind: kind})
		return nil
	}
	if err := walkChanges(ctx, lower, upper, mode, false, visit); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Change) int { return compareStrings(a.Path, b.Path) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func walkChanges(ctx context.Context, lower, upper string, mode WhiteoutMode, allDirs bool, visit visitFunc) error {
	u, err := openTree(upper)
	if err != nil {
		return err
	}
	defer u.Close()
	var l *os.File
	if lower != "" {
		if l, err = openTree(lower); err != nil {
			return err
		}
		defer l.Close()
	}
	w := &walker{ctx: ctx, visit: visit, allDirs: allDirs}
	if mode == WhiteoutOverlay {
		return w.overlayDir(l, u, "", false)
	}
	return w.mergeDir(l, u, "")
}

// mergeDir compares directory rel of two complete trees; l may be nil
// (nothing below).
func (w *walker) mergeDir(l, u *os.File, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	lnames, err := sortedNames(l)
	if err != nil {
		return err
	}
	unames, err := sortedNames(u)
	if err != nil {
		return err
	}
	for _, name := range lnames {
		if _, found := slices.BinarySearch(unames, name); !found {
			if err := w.emit(ChangeDelete, &node{rel: join(rel, name), name: name}); err != nil {
				return err
			}
		}
	}
	for _, name := range unames {
		un, err := statNode(u, name, join(rel, name))
		if err != nil {
			return err
		}
		if un == nil {
			continue // vanished since the directory was read
		}
		var ln *node
		if _, found := slices.BinarySearch(lnames, name); found {
			if ln, err = statNode(l, name, un.rel); err != nil {
				return err
			}
		}
		if err := w.mergeEntry(l, u, ln, un); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) mergeEntry(l, u *os.File, ln, un *node) error {
	if ln == nil {
		return w.addTree(u, un, ChangeAdd)
	}
	same, err := sameEntry(ln, un)
	if err != nil {
		return err
	}
	if !un.isDir() {
		if same {
			return nil
		}
		return w.emit(ChangeModify, un)
	}
	if !ln.isDir() {
		// A directory replaced a file: everything below is new.
		return w.addTree(u, un, ChangeModify)
	}
	if same && !w.allDirs {
		w.push(un)
		defer w.pop()
	} else if err := w.emit(ChangeModify, un); err != nil {
		return err
	}
	ls, err := openSubdir(l, ln.name, ln.rel)
	if err != nil {
		return err
	}
	defer ls.Close()
	us, err := openSubdir(u, un.name, un.rel)
	if err != nil {
		return err
	}
	defer us.Close()
	return w.mergeDir(ls, us, un.rel)
}

// addTree reports n with kind and, for a directory, everything below it as
// additions.
func (w *walker) addTree(dir *os.File, n *node, kind ChangeKind) error {
	if err := w.emit(kind, n); err != nil {
		return err
	}
	if !n.isDir() {
		return nil
	}
	sub, err := openSubdir(dir, n.name, n.rel)
	if err != nil {
		return err
	}
	defer sub.Close()
	return w.addDir(sub, n.rel)
}

func (w *walker) addDir(dir *os.File, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	names, err := sortedNames(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		n, err := statNode(dir, name, join(rel, name))
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		if err := w.addTree(dir, n, ChangeAdd); err != nil {
			return err
		}
	}
	return nil
}

// overlayDir scans directory rel of an overlayfs upperdir. l is the same
// directory in the complete lower view, or nil. hideLower is set below an
// opaque directory, where nothing of lower shows through.
func (w *walker) overlayDir(l, u *os.File, rel string, hideLower bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	unames, err := sortedNames(u)
	if err != nil {
		return err
	}
	nodes := make([]*node, 0, len(unames))
	for _, name := range unames {
		n, err := statNode(u, name, join(rel, name))
		if err != nil {
			return err
		}
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	if hideLower {
		if err := w.hiddenLower(l, unames, rel); err != nil {
			return err
		}
		l = nil
	}
	for _, n := range nodes {
		if n.isWhiteoutDev() {
			if err := w.emit(ChangeDelete, n); err != nil {
				return err
			}
		}
	}
	for _, n := range nodes {
		if !n.isWhiteoutDev() {
			if err := w.overlayEntry(l, u, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// hiddenLower reports the lower children an opaque directory hides.
func (w *walker) hiddenLower(l *os.File, unames []string, rel string) error {
	lnames, err := sortedNames(l)
	if err != nil {
		return err
	}
	for _, name := range lnames {
		if _, found := slices.BinarySearch(unames, name); !found {
			if err := w.emit(ChangeDelete, &node{rel: join(rel, name), name: name}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) overlayEntry(l, u *os.File, n *node) error {
	var ln *node
	if l != nil {
		var err error
		if ln, err = statNode(l, n.name, n.rel); err != nil {
			return err
		}
	}
	kind := ChangeAdd
	if ln != nil {
		kind = ChangeModify
	}
	if !n.isDir() {
		return w.emit(kind, n)
	}
	unchanged := ln != nil && ln.isDir() && !n.opaque && sameMeta(ln, n) &&
		ln.st.Size == n.st.Size && ln.st.Mtim == n.st.Mtim
	if unchanged && !w.allDirs {
		w.push(n)
		defer w.pop()
	} else if err := w.emit(kind, n); err != nil {
		return err
	}
	us, err := openSubdir(u, n.name, n.rel)
	if err != nil {
		return err
	}
	defer us.Close()
	var ls *os.File
	if ln != nil && ln.isDir() {
		if ls, err = openSubdir(l, ln.name, ln.rel); err != nil {
			return err
		}
		defer ls.Close()
	}
	return w.overlayDir(ls, us, n.rel, n.opaque)
}
