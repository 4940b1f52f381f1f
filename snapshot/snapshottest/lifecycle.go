package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth/errdefs"
	"berth/mount"
	"berth/snapshot"
)

func testLifecycleErrors(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(string) {})
	if _, err := sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}
	ignore := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"Stat unknown", ignore(sn.Stat(ctx, "nope")), errdefs.ErrNotFound},
		{"Mounts unknown", ignore(sn.Mounts(ctx, "nope")), errdefs.ErrNotFound},
		{"Usage unknown", ignore(sn.Usage(ctx, "nope")), errdefs.ErrNotFound},
		{"Remove unknown", sn.Remove(ctx, "nope"), errdefs.ErrNotFound},
		{"Commit unknown", sn.Commit(ctx, "x", "nope"), errdefs.ErrNotFound},
		{"Prepare unknown parent", ignore(sn.Prepare(ctx, "x", "nope")), errdefs.ErrNotFound},
		{"View unknown parent", ignore(sn.View(ctx, "x", "nope")), errdefs.ErrNotFound},
		{"Prepare duplicate", ignore(sn.Prepare(ctx, "active", "")), errdefs.ErrAlreadyExists},
		{"View over committed name", ignore(sn.View(ctx, "base", "")), errdefs.ErrAlreadyExists},
		{"Commit onto existing name", sn.Commit(ctx, "base", "active"), errdefs.ErrAlreadyExists},
		{"Remove parent with children", sn.Remove(ctx, "base"), errdefs.ErrFailedPrecondition},
		{"Commit view", sn.Commit(ctx, "x", "view"), errdefs.ErrFailedPrecondition},
		{"Prepare on active parent", ignore(sn.Prepare(ctx, "x", "active")), errdefs.ErrFailedPrecondition},
		{"Prepare on view parent", ignore(sn.Prepare(ctx, "x", "view")), errdefs.ErrFailedPrecondition},
		{"Mounts of committed", ignore(sn.Mounts(ctx, "base")), errdefs.ErrFailedPrecondition},
		{"Prepare empty key", ignore(sn.Prepare(ctx, "", "")), errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	// Failed calls must leave nothing behind.
	for _, key := range []string{"x", "nope"} {
		if _, err := sn.Stat(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Stat(%s) after failed calls: %v", key, err)
		}
	}
	if err := sn.Commit(ctx, "next", "active"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "active"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("key after Commit: %v, want ErrNotFound", err)
	}
	if err := sn.Commit(ctx, "again", "next"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Commit of committed: %v, want ErrFailedPrecondition", err)
	}
}

func testStatWalk(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	if _, err := sn.Prepare(ctx, "a", "", snapshot.WithLabels(map[string]string{"one": "1"})); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "base", "a", snapshot.WithLabels(map[string]string{"two": "2"})); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "work", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.View(ctx, "look", "base"); err != nil {
		t.Fatal(err)
	}
	want := map[string]snapshot.Info{
		"base": {Kind: snapshot.KindCommitted, Name: "base", Labels: map[string]string{"one": "1", "two": "2"}},
		"work": {Kind: snapshot.KindActive, Name: "work", Parent: "base"},
		"look": {Kind: snapshot.KindView, Name: "look", Parent: "base"},
	}
	check := func(info snapshot.Info) {
		w, ok := want[info.Name]
		if !ok {
			t.Errorf("unexpected snapshot %+v", info)
			return
		}
		if info.Kind != w.Kind || info.Parent != w.Parent || fmt.Sprint(info.Labels) != fmt.Sprint(w.Labels) {
			t.Errorf("%s = %+v, want %+v", info.Name, info, w)
		}
		if info.Created.Before(before) || info.Updated.Before(info.Created) {
			t.Errorf("%s: created %v, updated %v", info.Name, info.Created, info.Updated)
		}
	}
	for name := range want {
		info, err := sn.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		check(info)
	}
	var seen []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		check(info)
		seen = append(seen, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"base", "look", "work"}) {
		t.Errorf("Walk saw %v", seen)
	}
	stop := errors.New("stop")
	if err := sn.Walk(ctx, func(context.Context, snapshot.Info) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk did not return the callback's error: %v", err)
	}
}

func testUsage(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	const size = 1 << 20
	root, _ := active(t, sn, "a", "")
	empty, err := sn.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i) // not zeros: no sparse or compressed shortcut
	}
	if err := os.WriteFile(filepath.Join(root, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "big"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	unmount(t, root)
	u, err := sn.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	grown := u.Size - empty.Size
	if grown < size || grown >= 2*size {
		t.Errorf("usage grew by %d bytes for one %d-byte file with two links", grown, size)
	}
	if u.Inodes != empty.Inodes+1 {
		t.Errorf("inodes %d, want %d (a hard link is one inode)", u.Inodes, empty.Inodes+1)
	}
	if err := sn.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if c, err := sn.Usage(ctx, "c"); err != nil || c != u {
		t.Errorf("usage after commit = %+v, %v; want %+v", c, err, u)
	}
}

func testRemoveAndReuse(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(root string) { write(t, filepath.Join(root, "f"), "1") })
	root, _ := active(t, sn, "a", "base")
	write(t, filepath.Join(root, "g"), "2")
	unmount(t, root)
	for _, key := range []string{"a", "base"} {
		if err := sn.Remove(ctx, key); err != nil {
			t.Fatalf("Remove(%s): %v", key, err)
		}
		if _, err := sn.Stat(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("Stat(%s) after Remove: %v", key, err)
		}
	}
	root, _ = active(t, sn, "base", "")
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Fatalf("reused key sees old contents: %v, %v", entries, err)
	}
}

func testParallelPrepare(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(root string) { write(t, filepath.Join(root, "f"), "base") })
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = sn.Prepare(ctx, fmt.Sprintf("c%d", i), "base")
		})
		wg.Go(func() {
			_, errs[n+i] = sn.Prepare(ctx, "same", "base")
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case i < n && err != nil:
			t.Errorf("Prepare(c%d): %v", i, err)
		case i >= n && err == nil:
			won++
		case i >= n && !errors.Is(err, errdefs.ErrAlreadyExists):
			t.Errorf("racing Prepare(same): %v, want ErrAlreadyExists", err)
		}
	}
	if won != 1 {
		t.Errorf("%d racing Prepares of one key succeeded, want 1", won)
	}
	roots := map[string]bool{}
	for i := range n {
		mounts, err := sn.Mounts(ctx, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		root := mountAt(t, mounts)
		mustRead(t, filepath.Join(root, "f"), "base")
		write(t, filepath.Join(root, "own"), fmt.Sprint(i))
		roots[root] = true
	}
	for i := range n {
		mounts, err := sn.Mounts(ctx, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		root := mountAt(t, mounts)
		mustRead(t, filepath.Join(root, "own"), fmt.Sprint(i))
	}
}

func testRoundTrip(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "etc", "hostname"), "base")
		write(t, filepath.Join(root, "bin", "sh"), "shell")
	})
	root, _ := active(t, sn, "work", "base")
	mustRead(t, filepath.Join(root, "etc", "hostname"), "base")
	write(t, filepath.Join(root, "etc", "hostname"), "changed")
	write(t, filepath.Join(root, "new"), "new")
	unmount(t, root)
	if err := sn.Commit(ctx, "top", "work"); err != nil {
		t.Fatal(err)
	}
	top := view(t, sn, "view-top", "top")
	mustRead(t, filepath.Join(top, "etc", "hostname"), "changed")
	mustRead(t, filepath.Join(top, "bin", "sh"), "shell")
	mustRead(t, filepath.Join(top, "new"), "new")
	if err := os.WriteFile(filepath.Join(top, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a View: %v, want EROFS", err)
	}
	base := view(t, sn, "view-base", "base")
	mustRead(t, filepath.Join(base, "etc", "hostname"), "base")
	mustNotExist(t, filepath.Join(base, "new"))
	empty := view(t, sn, "view-empty", "")
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Errorf("View with no parent: %v, %v", entries, err)
	}
	mounts, err := sn.Mounts(ctx, "view-top")
	if err != nil || len(mounts) == 0 || !mounts[0].ReadOnly() {
		t.Errorf("Mounts(view-top) = %+v, %v; want read-only", mounts, err)
	}
}

// testRemoveRacesPrepare: a parent removed while a child is prepared on it
// must end one way or the other, never with a child whose parent is gone.
func testRemoveRacesPrepare(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	for i := range 10 {
		parent, child := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i)
		layer(t, sn, parent, "", func(root string) { write(t, filepath.Join(root, "f"), "x") })
		var prepErr, rmErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, prepErr = sn.Prepare(ctx, child, parent) })
		wg.Go(func() { rmErr = sn.Remove(ctx, parent) })
		wg.Wait()
		switch {
		case prepErr == nil && rmErr == nil:
			t.Fatalf("round %d: both Prepare on and Remove of %s succeeded", i, parent)
		case prepErr == nil:
			if !errors.Is(rmErr, errdefs.ErrFailedPrecondition) {
				t.Fatalf("round %d: Remove lost the race with %v", i, rmErr)
			}
			root := mountAt(t, mustMounts(t, sn, child))
			mustRead(t, filepath.Join(root, "f"), "x")
		case rmErr == nil:
			if !errors.Is(prepErr, errdefs.ErrNotFound) {
				t.Fatalf("round %d: Prepare lost the race with %v", i, prepErr)
			}
		default:
			t.Fatalf("round %d: Prepare %v, Remove %v", i, prepErr, rmErr)
		}
	}
}

func mustMounts(t *testing.T, sn snapshot.Snapshotter, key string) []mount.Mount {
	t.Helper()
	mounts, err := sn.Mounts(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}
