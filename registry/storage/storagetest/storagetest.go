// Package storagetest is the conformance suite every registry/storage.Driver
// implementation runs from its own tests:
//
//	func TestDriver(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Driver { return fs.New(t.TempDir()) })
//	}
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"berth/errdefs"
	"berth/registry/storage"
)

// Run runs every conformance test against fresh drivers made by newDriver.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"PutGet", testPutGet},
		{"NotFound", testNotFound},
		{"InvalidPaths", testInvalidPaths},
		{"WriterInvisibleUntilCommit", testWriterInvisible},
		{"WriterCancel", testWriterCancel},
		{"Append", testAppend},
		{"AppendCancel", testAppendCancel},
		{"ReaderOffset", testReaderOffset},
		{"ListAndStat", testListAndStat},
		{"DeletePrefix", testDeletePrefix},
		{"ConcurrentPut", testConcurrentPut},
		{"LargeStream", testLargeStream},
		{"CreateExclusive", testCreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDriver(t))
		})
	}
}

func mustPut(t *testing.T, d storage.Driver, p, content string) {
	t.Helper()
	if err := d.Put(t.Context(), p, []byte(content)); err != nil {
		t.Fatalf("Put(%s): %v", p, err)
	}
}

func mustGet(t *testing.T, d storage.Driver, p string) string {
	t.Helper()
	b, err := d.Get(t.Context(), p)
	if err != nil {
		t.Fatalf("Get(%s): %v", p, err)
	}
	return string(b)
}

func readAll(t *testing.T, d storage.Driver, p string, off int64) string {
	t.Helper()
	r, err := d.Reader(t.Context(), p, off)
	if err != nil {
		t.Fatalf("Reader(%s, %d): %v", p, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func testPutGet(t *testing.T, d storage.Driver) {
	for _, c := range []string{"", "x", "hello world", string(bytes.Repeat([]byte{0, 1, 2}, 10000))} {
		mustPut(t, d, "a/b/c", c)
		if got := mustGet(t, d, "a/b/c"); got != c {
			t.Fatalf("Get = %d bytes, want %d", len(got), len(c))
		}
		info, err := d.Stat(t.Context(), "a/b/c")
		if err != nil || info.Size != int64(len(c)) || info.IsDir {
			t.Fatalf("Stat = %+v, %v; want size %d file", info, err, len(c))
		}
	}
}

func testNotFound(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	mustPut(t, d, "dir/file", "x")
	checks := map[string]error{}
	_, checks["Stat"] = d.Stat(ctx, "missing")
	_, checks["Get"] = d.Get(ctx, "missing/x")
	_, checks["GetDir"] = d.Get(ctx, "dir")
	_, checks["Reader"] = d.Reader(ctx, "missing", 0)
	_, checks["List"] = d.List(ctx, "nope")
	_, checks["AppendWriter"] = d.Writer(ctx, "missing", true)
	checks["Delete"] = d.Delete(ctx, "missing")
	for name, err := range checks {
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: err = %v, want NotFound", name, err)
		}
	}
}

func testInvalidPaths(t *testing.T, d storage.Driver) {
	for _, p := range []string{"", "/abs", "a/../b", "a//b", "./a", "a/"} {
		if err := d.Put(t.Context(), p, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Put(%q) = %v, want InvalidArgument", p, err)
		}
	}
}

func testWriterInvisible(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "w/obj", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "partial"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "w/obj"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Stat before commit = %v, want NotFound", err)
	}
	if names, err := d.List(ctx, "w"); err == nil && len(names) > 0 {
		t.Fatalf("List shows uncommitted writer: %v", names)
	}
	if w.Size() != 7 {
		t.Fatalf("Size = %d, want 7", w.Size())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, d, "w/obj"); got != "partial" {
		t.Fatalf("after commit = %q", got)
	}
}

func testWriterCancel(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	mustPut(t, d, "keep/obj", "old")
	w, err := d.Writer(ctx, "keep/obj", false)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "new content")
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, d, "keep/obj"); got != "old" {
		t.Fatalf("after cancel = %q, want old", got)
	}
	if names, _ := d.List(ctx, "keep"); !slices.Equal(names, []string{"obj"}) {
		t.Fatalf("List after cancel = %v", names)
	}
}

func testAppend(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	mustPut(t, d, "up/data", "")
	want := ""
	for i := range 5 {
		w, err := d.Writer(ctx, "up/data", true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != int64(len(want)) {
			t.Fatalf("append writer Size = %d, want %d", w.Size(), len(want))
		}
		chunk := fmt.Sprintf("chunk%d;", i)
		io.WriteString(w, chunk)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want += chunk
	}
	if got := readAll(t, d, "up/data", 0); got != want {
		t.Fatalf("appended = %q, want %q", got, want)
	}
}

func testAppendCancel(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	mustPut(t, d, "up/data", "base")
	w, err := d.Writer(ctx, "up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "garbage")
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, d, "up/data"); got != "base" {
		t.Fatalf("after cancelled append = %q, want base", got)
	}
}

func testReaderOffset(t *testing.T, d storage.Driver) {
	mustPut(t, d, "r", "0123456789")
	for _, tc := range []struct {
		off  int64
		want string
	}{{0, "0123456789"}, {3, "3456789"}, {10, ""}} {
		if got := readAll(t, d, "r", tc.off); got != tc.want {
			t.Errorf("Reader(%d) = %q, want %q", tc.off, got, tc.want)
		}
	}
	if _, err := d.Reader(t.Context(), "r", 11); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Reader beyond end = %v, want InvalidArgument", err)
	}
}

func testListAndStat(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	for _, p := range []string{"repo/b", "repo/a/x", "repo/c/y/z"} {
		mustPut(t, d, p, p)
	}
	names, err := d.List(ctx, "repo")
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	info, err := d.Stat(ctx, "repo/c")
	if err != nil || !info.IsDir {
		t.Fatalf("Stat(prefix) = %+v, %v; want dir", info, err)
	}
}

func testDeletePrefix(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	for _, p := range []string{"x/a/1", "x/a/2", "x/b/1"} {
		mustPut(t, d, p, "v")
	}
	if err := d.Delete(ctx, "x/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "x/a/1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after delete = %v", err)
	}
	if err := d.Delete(ctx, "x/b/1"); err != nil {
		t.Fatal(err)
	}
	// The last object gone, the prefix must be gone too.
	if _, err := d.List(ctx, "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("List of emptied prefix = %v, want NotFound", err)
	}
}

func testConcurrentPut(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	var wg sync.WaitGroup
	vals := []string{"aaaa", "bbbbbbbb", "cc"}
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Put(ctx, "race/obj", []byte(vals[i%3])); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := mustGet(t, d, "race/obj"); !slices.Contains(vals, got) {
		t.Fatalf("torn object %q", got)
	}
	if names, _ := d.List(ctx, "race"); len(names) != 1 {
		t.Fatalf("leftovers after concurrent puts: %v", names)
	}
}

func testLargeStream(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "big", false)
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for range 64 {
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := d.Reader(ctx, "big", int64(len(block)*63)+5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != int64(len(block))-5 {
		t.Fatalf("tail read = %d, %v", n, err)
	}
}

// testCreate checks the optional Creator: one winner among concurrent
// creators, the others told it exists, the winner's content kept.
func testCreate(t *testing.T, d storage.Driver) {
	c, ok := d.(storage.Creator)
	if !ok {
		t.Skip("driver does not implement storage.Creator")
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := []string{}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("creator %d", i)
			err := c.Create(ctx, "excl/obj", []byte(v))
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, v)
				mu.Unlock()
			case !errors.Is(err, errdefs.ErrAlreadyExists):
				t.Errorf("Create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d creators won: %v", len(won), won)
	}
	if got := mustGet(t, d, "excl/obj"); got != won[0] {
		t.Fatalf("content %q, winner wrote %q", got, won[0])
	}
	if names, _ := d.List(ctx, "excl"); len(names) != 1 {
		t.Fatalf("leftovers: %v", names)
	}
}
