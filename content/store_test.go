package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteCommitRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, layers")
	d, n, err := s.WriteBlob(ctx, "ref-1", bytes.NewReader(data), int64(len(data)), digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromBytes(data) || n != int64(len(data)) {
		t.Fatalf("got %s/%d", d, n)
	}
	got, err := s.ReadAll(ctx, d, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	info, err := s.Info(ctx, d)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("info %+v, %v", info, err)
	}
	// Writing the same blob again is fine and changes nothing.
	if _, _, err := s.WriteBlob(ctx, "ref-2", bytes.NewReader(data), -1, ""); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if _, err := s.ReadAll(ctx, d, 3); !errdefs.InvalidArgument(err) {
		t.Fatalf("size limit not enforced: %v", err)
	}
}

func TestCommitRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := []byte("some bytes")
	cases := []struct {
		name string
		size int64
		dgst digest.Digest
	}{
		{"wrong size", int64(len(data)) + 1, ""},
		{"wrong digest", -1, digest.FromString("other")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			_, _, err := s.WriteBlob(ctx, "r", bytes.NewReader(data), tc.size, tc.dgst)
			if !errdefs.InvalidArgument(err) {
				t.Fatalf("want invalid argument, got %v", err)
			}
			assertEmpty(t, s)
		})
	}
}

func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	n := 0
	if err := s.Walk(context.Background(), func(Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	ing, _ := os.ReadDir(filepath.Join(s.root, "ingest"))
	if n != 0 || len(ing) != 0 {
		t.Fatalf("store not empty: %d blobs, %d ingests", n, len(ing))
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	data := []byte(strings.Repeat("0123456789", 1000))
	w, err := s.Writer(ctx, "layer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:4000]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "layer"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second writer for the same ref: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "layer")
	if err != nil || st.Offset != 4000 {
		t.Fatalf("status %+v %v", st, err)
	}
	// A new store on the same root (a daemon restart) resumes too.
	s2, err := New(s.root)
	if err != nil {
		t.Fatal(err)
	}
	w, err = s2.Writer(ctx, "layer")
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 4000 {
		t.Fatalf("resumed at %d", w.Offset())
	}
	if _, err := io.Copy(w, bytes.NewReader(data[w.Offset():])); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Status(ctx, "layer"); !errdefs.NotFound(err) {
		t.Fatalf("ingest left after commit: %v", err)
	}
}

func TestTruncateRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	w, err := s.Writer(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("garbage"))
	if err := w.Truncate(ctx, 3); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("-ok"))
	want := digest.FromString("gar-ok")
	if err := w.Commit(ctx, 6, want); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidDigests(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, d := range []digest.Digest{"", "sha256:xyz", "sha256:../../etc/passwd", "md5:d41d8cd98f00b204e9800998ecf8427e"} {
		if _, err := s.Info(context.Background(), d); !errdefs.InvalidArgument(err) {
			t.Errorf("%q: %v", d, err)
		}
	}
	if _, err := s.Info(context.Background(), digest.FromString("absent")); !errdefs.NotFound(err) {
		t.Errorf("absent: %v", err)
	}
}

func TestAbortStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	w, _ := s.Writer(ctx, "old")
	w.Write([]byte("x"))
	w.Close()
	if err := s.AbortStale(ctx, 0); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)
}
