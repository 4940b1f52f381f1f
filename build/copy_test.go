package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"berth/build/dockerfile"
	"berth/errdefs"
)

// copyFixture is an image root and a build context on the real file
// system: COPY reads the one and looks at the other, no mount involved.
type copyFixture struct {
	image, context, scratch string
}

func newCopyFixture(t *testing.T) copyFixture {
	t.Helper()
	f := copyFixture{image: t.TempDir(), context: t.TempDir(), scratch: t.TempDir()}
	write := func(root, name, data string, mode os.FileMode) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(f.image, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\nsync:x:4:100:sync:/bin:/bin/sync\n", 0o644)
	write(f.image, "etc/group", "root:x:0:\nwww-data:x:34:\n", 0o644)
	for _, d := range []string{"usr/local", "run", "var"} {
		os.MkdirAll(filepath.Join(f.image, d), 0o755)
	}
	os.Symlink("/run", filepath.Join(f.image, "var/run"))
	write(f.context, "a.txt", "alpha\n", 0o644)
	write(f.context, "exec.sh", "#!/bin/sh\n", 0o755)
	write(f.context, "dir/b.txt", "bravo\n", 0o600)
	write(f.context, "dir/sub/c.txt", "charlie\n", 0o644)
	os.Symlink("a.txt", filepath.Join(f.context, "link"))
	os.Symlink("../../outside", filepath.Join(f.context, "dir/escape"))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range []struct{ name, data string }{{"pkg/", ""}, {"pkg/file", "in the archive\n"}, {"../../evil", "confined\n"}} {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg, Uid: 7, Gid: 7}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		tw.WriteHeader(h)
		tw.Write([]byte(e.data))
	}
	tw.Close()
	gz.Close()
	write(f.context, "pkg.tar.gz", buf.String(), 0o644)
	return f
}

// tree is the fixture's context as the daemon receives it: a tar.
func (f copyFixture) tree(t *testing.T) fileTree {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, f.context)) }()
	bc, err := receiveContext(context.Background(), pr, filepath.Join(f.scratch, fmt.Sprintf("ctx-%d.tar", time.Now().UnixNano())), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	return bc
}

// tarDir writes dir as a tar, as a client sends a context.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			_, err = tw.Write(b)
		}
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

type layerEntry struct {
	mode     int64
	uid, gid int
	typ      byte
	data     string
	link     string
}

// copyLayer runs a COPY or ADD line against the fixture and returns the
// layer's entries by name.
func (f copyFixture) copyLayer(t *testing.T, line string) (map[string]layerEntry, error) {
	d, err := dockerfile.Read("Dockerfile", strings.NewReader("FROM x\nWORKDIR /work\n"+line+"\n"))
	if err != nil {
		return nil, err
	}
	in := d.Stages[0].Steps[1].(*dockerfile.Copy)
	s := &stage{j: &job{lex: dockerfile.Lex{}}, cfg: scratchConfig(""), args: map[string]argValue{}}
	s.cfg.Config.WorkingDir = "/work"
	ctx := context.Background()
	op, err := s.prepareCopy(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := op.findSources(ctx, s, f.tree(t), true); err != nil {
		return nil, err
	}
	w, err := newLayerWriter(f.image, op)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := w.write(&buf); err != nil {
		return nil, err
	}
	out := map[string]layerEntry{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if _, dup := out[h.Name]; dup {
			return nil, fmt.Errorf("duplicate entry %s", h.Name)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = layerEntry{mode: h.Mode, uid: h.Uid, gid: h.Gid, typ: h.Typeflag, data: string(data), link: h.Linkname}
	}
}

func names(m map[string]layerEntry) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestCopyLayer(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	tests := []struct {
		line  string
		names string
		check map[string]layerEntry
	}{
		{"COPY a.txt /new/dir/", "new/ new/dir/ new/dir/a.txt",
			map[string]layerEntry{"new/": {mode: 0o755, typ: tar.TypeDir}, "new/dir/a.txt": {mode: 0o644, typ: tar.TypeReg, data: "alpha\n"}}},
		{"COPY a.txt /usr/local/bin/tool", "usr/local/bin/ usr/local/bin/tool", nil},
		{"COPY a.txt rel.txt", "work/ work/rel.txt", nil},
		{"COPY dir /app", "app/ app/b.txt app/escape app/sub/ app/sub/c.txt",
			map[string]layerEntry{"app/b.txt": {mode: 0o600, typ: tar.TypeReg, data: "bravo\n"}, "app/escape": {mode: 0o777, typ: tar.TypeSymlink, link: "../../outside"}}},
		{"COPY a.txt /var/run/", "run/a.txt", nil},
		{"COPY --chown=www:www-data a.txt /srv/", "srv/ srv/a.txt",
			map[string]layerEntry{"srv/": {mode: 0o755, typ: tar.TypeDir, uid: 33, gid: 34}, "srv/a.txt": {mode: 0o644, typ: tar.TypeReg, uid: 33, gid: 34, data: "alpha\n"}}},
		{"COPY --chown=1000 a.txt /a", "a", map[string]layerEntry{"a": {mode: 0o644, typ: tar.TypeReg, uid: 1000, gid: 1000, data: "alpha\n"}}},
		{"COPY --chown=sync a.txt /s", "s", map[string]layerEntry{"s": {mode: 0o644, typ: tar.TypeReg, uid: 4, gid: 100, data: "alpha\n"}}},
		{"COPY --chown=4 a.txt /s", "s", map[string]layerEntry{"s": {mode: 0o644, typ: tar.TypeReg, uid: 4, gid: 4, data: "alpha\n"}}},
		{"COPY --chmod=0700 exec.sh a.txt /bin/", "bin/ bin/a.txt bin/exec.sh",
			map[string]layerEntry{"bin/a.txt": {mode: 0o700, typ: tar.TypeReg, data: "alpha\n"}}},
		{"COPY link /l", "l", map[string]layerEntry{"l": {mode: 0o644, typ: tar.TypeReg, data: "alpha\n"}}},
		{"COPY dir/* /w/", "w/ w/b.txt w/c.txt w/escape", nil},
		{"COPY *.txt /t/", "t/ t/a.txt", nil},
		{"ADD pkg.tar.gz /opt/", "opt/ opt/evil opt/pkg/ opt/pkg/file",
			map[string]layerEntry{"opt/pkg/file": {mode: 0o644, typ: tar.TypeReg, uid: 7, gid: 7, data: "in the archive\n"}}},
		{"COPY pkg.tar.gz /opt/", "opt/ opt/pkg.tar.gz", nil},
		{"COPY <<EOF /etc/motd\nhello\nEOF", "etc/motd", map[string]layerEntry{"etc/motd": {mode: 0o644, typ: tar.TypeReg, data: "hello\n"}}},
		{"COPY <<one <<two /h/\n1\none\n2\ntwo", "h/ h/one h/two", map[string]layerEntry{"h/two": {mode: 0o644, typ: tar.TypeReg, data: "2\n"}}},
	}
	for _, tt := range tests {
		got, err := f.copyLayer(t, tt.line)
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if n := names(got); n != tt.names {
			t.Errorf("%q: entries %q, want %q", tt.line, n, tt.names)
		}
		for name, want := range tt.check {
			if got[name] != want {
				t.Errorf("%q: %s is %+v, want %+v", tt.line, name, got[name], want)
			}
		}
	}
}

func TestCopyErrors(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	tests := []struct {
		line string
		want string
		kind func(error) bool
	}{
		{"COPY nope /x", "file not found in build context or excluded by .dockerignore: stat nope: file does not exist", errdefs.NotFound},
		{"COPY ../secret /x", "Forbidden path outside the build context: ../secret ()", errdefs.InvalidArgument},
		{"COPY a.txt exec.sh /notadir", "When using COPY with more than one source file, the destination must be a directory and end with a /", errdefs.InvalidArgument},
		{"COPY *.none /x/", "no source files were specified", errdefs.NotFound},
		{"COPY http://127.0.0.1/x /x", "source can't be a URL for COPY", errdefs.InvalidArgument},
		{"COPY --chown=nobody a.txt /x", "unable to find user nobody", errdefs.InvalidArgument},
		{"COPY a.txt /etc/passwd/x", "not a directory", errdefs.InvalidArgument},
	}
	for _, tt := range tests {
		_, err := f.copyLayer(t, tt.line)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !tt.kind(err) {
			t.Errorf("%q: error %v, want %q", tt.line, err, tt.want)
		}
	}
}

func TestCopyDigest(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	describe := func(line string) string {
		d, _ := dockerfile.Read("Dockerfile", strings.NewReader("FROM x\n"+line+"\n"))
		s := &stage{j: &job{lex: dockerfile.Lex{}}, cfg: scratchConfig(""), args: map[string]argValue{}}
		op, err := s.prepareCopy(context.Background(), d.Stages[0].Steps[0].(*dockerfile.Copy))
		if err == nil {
			err = op.findSources(context.Background(), s, f.tree(t), true)
		}
		var c string
		if err == nil {
			c, err = op.describe(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	file := describe("COPY a.txt /x/")
	if !strings.HasPrefix(file, "COPY file:") || !strings.HasSuffix(file, " in /x/ ") {
		t.Errorf("history comment %q", file)
	}
	if dir := describe("COPY dir /x/"); !strings.HasPrefix(dir, "COPY dir:") {
		t.Errorf("history comment %q", dir)
	}
	if multi := describe("COPY a.txt dir /x/"); !strings.HasPrefix(multi, "COPY multi:") {
		t.Errorf("history comment %q", multi)
	}
	before := describe("COPY dir /x/")
	os.WriteFile(filepath.Join(f.context, "dir/sub/c.txt"), []byte("changed\n"), 0o644)
	if after := describe("COPY dir /x/"); after == before {
		t.Error("changing a file below a copied directory left its digest alone")
	}
	os.Chmod(filepath.Join(f.context, "a.txt"), 0o755)
	if again := describe("COPY a.txt /x/"); again == file {
		t.Error("changing a file's mode left its digest alone")
	}
}
