package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips tests that chown, mknod, set trusted.* xattrs or mount.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown, mknod, trusted.* xattrs and mounts")
	}
}

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// ent describes one tar entry of a test layer.
type ent struct {
	name   string
	typ    byte
	body   string
	mode   int64
	link   string
	uid    int
	gid    int
	xattrs map[string]string
	major  int64
	minor  int64
	mtime  time.Time
}

func (e ent) header() *tar.Header {
	h := &tar.Header{
		Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link,
		Uid: e.uid, Gid: e.gid, Devmajor: e.major, Devminor: e.minor,
		ModTime: e.mtime, Size: int64(len(e.body)), Format: tar.FormatPAX,
	}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Typeflag != tar.TypeReg {
		h.Size = 0
	}
	if h.Mode == 0 {
		h.Mode = 0o644
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
	}
	if h.ModTime.IsZero() {
		h.ModTime = epoch
	}
	for k, v := range e.xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+k] = v
	}
	return h
}

// layer builds a complete tar (with end-of-archive marker) from entries.
func layer(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.header()
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func apply(t testing.TB, root string, data []byte, mode WhiteoutMode) {
	t.Helper()
	n, err := Apply(context.Background(), root, bytes.NewReader(data), ApplyOptions{Mode: mode})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if n != int64(len(data)) {
		t.Fatalf("apply read %d bytes, layer has %d", n, len(data))
	}
}

func tarOf(t testing.TB, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Tar(context.Background(), &buf, root); err != nil {
		t.Fatalf("tar %s: %v", root, err)
	}
	return buf.Bytes()
}

func diffOf(t testing.TB, lower, upper string, mode WhiteoutMode) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Diff(context.Background(), &buf, lower, upper, mode); err != nil {
		t.Fatalf("diff %s %s: %v", lower, upper, err)
	}
	return buf.Bytes()
}

// listing is a readable summary of a tar for failure messages and for
// asserting on entry order.
func listing(t testing.TB, data []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []string
	for {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("read tar: %v", err)
		}
		s := string(h.Typeflag) + " " + h.Name
		if h.Linkname != "" {
			s += " -> " + h.Linkname
		}
		out = append(out, s)
	}
}

func sameTars(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: tars differ\n got: %q\nwant: %q", what, listing(t, got), listing(t, want))
	}
}

// jail is a temp dir holding root/ (where layers go) and sentinel/ beside
// it; untouched reports whether anything outside root changed.
type jail struct {
	dir, root, sentinel string
	before              []byte
	names               []string
}

func newJail(t testing.TB) *jail {
	t.Helper()
	dir := t.TempDir()
	j := &jail{dir: dir, root: filepath.Join(dir, "root"), sentinel: filepath.Join(dir, "sentinel")}
	for _, d := range []string{j.root, j.sentinel} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(j.sentinel, "keep"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := epoch.Add(-time.Hour)
	for _, p := range []string{filepath.Join(j.sentinel, "keep"), j.sentinel} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	j.before = tarOf(t, j.sentinel)
	j.names = dirNames(t, dir)
	return j
}

func (j *jail) assertUntouched(t testing.TB) {
	t.Helper()
	sameTars(t, "sentinel", tarOf(t, j.sentinel), j.before)
	var st unix.Stat_t
	if err := unix.Lstat(j.sentinel, &st); err != nil || st.Mtim.Sec != epoch.Add(-time.Hour).Unix() {
		t.Fatalf("sentinel directory changed: mtime %d, err %v", st.Mtim.Sec, err)
	}
	if got := dirNames(t, j.dir); !slices.Equal(got, j.names) {
		t.Fatalf("entries beside root changed: %v, want %v", got, j.names)
	}
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func lgetxattr(t testing.TB, p, name string) (string, bool) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func lstat(t testing.TB, p string) (unix.Stat_t, bool) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Lstat(p, &st)
	return st, err == nil
}
