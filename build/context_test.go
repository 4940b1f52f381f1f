package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"berth/errdefs"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}
		switch {
		case strings.HasSuffix(n, "@"):
			h = &tar.Header{Name: strings.TrimSuffix(n, "@"), Typeflag: tar.TypeSymlink, Linkname: files[n], Mode: 0o777}
		case strings.HasSuffix(n, "#"):
			h = &tar.Header{Name: strings.TrimSuffix(n, "#"), Typeflag: tar.TypeLink, Linkname: files[n]}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(files[n]))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func receive(t *testing.T, body []byte) *ctxTree {
	t.Helper()
	bc, err := receiveContext(context.Background(), bytes.NewReader(body), filepath.Join(t.TempDir(), "context.tar"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	return bc
}

func files(t *testing.T, tree fileTree) string {
	t.Helper()
	var out []string
	walkTree(tree, "", func(rel string, fi os.FileInfo) error {
		if rel != "" && !fi.IsDir() {
			out = append(out, rel)
		}
		return nil
	})
	return strings.Join(out, " ")
}

func TestReceiveContextAndIgnore(t *testing.T) {
	t.Parallel()
	bc := receive(t, tarOf(t, map[string]string{
		"Dockerfile": "FROM busybox\n", ".dockerignore": "*.log\nsecrets\n!secrets/public.pem\nDockerfile\nempty\n",
		"app.go": "package main", "debug.log": "x", "secrets/key.pem": "k", "secrets/public.pem": "p", "logs/a.log": "y",
		"empty/x": "x",
	}))
	name, df, err := bc.readDockerfile("")
	if err != nil || name != "Dockerfile" || string(df) != "FROM busybox\n" {
		t.Fatalf("readDockerfile = %q, %q, %v", name, df, err)
	}
	if err := bc.applyIgnore(); err != nil {
		t.Fatal(err)
	}
	// The Dockerfile was read before .dockerignore dropped it, as Docker
	// does; *.log is not **/*.log, so logs/a.log stays.
	if got, want := files(t, bc), ".dockerignore app.go logs/a.log secrets/public.pem"; got != want {
		t.Fatalf("context after .dockerignore: %q, want %q", got, want)
	}
	if _, err := bc.Lstat("empty"); err == nil {
		t.Fatal("an excluded directory left empty is still there")
	}
}

func TestContextTree(t *testing.T) {
	t.Parallel()
	bc := receive(t, tarOf(t, map[string]string{
		"dir/a.txt": "alpha", "dir/link@": "a.txt", "abs@": "/dir/a.txt", "up@": "../../../dir", "loop@": "loop",
		"hard#": "dir/a.txt", "deep/er/file": "implied parents",
	}))
	for _, tt := range []struct{ in, want string }{
		{"dir/link", "dir/a.txt"}, {"abs", "dir/a.txt"}, {"up/a.txt", "dir/a.txt"}, {"../../dir/./a.txt", "dir/a.txt"},
	} {
		if got, err := bc.Resolve(tt.in); err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := bc.Resolve("loop"); err == nil || !errdefs.InvalidArgument(err) {
		t.Errorf("a symlink loop resolved: %v", err)
	}
	r, err := bc.Open("hard")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "alpha" {
		t.Errorf("hard link content %q", b)
	}
	if fi, err := bc.Lstat("deep/er"); err != nil || !fi.IsDir() {
		t.Errorf("implied parent: %v, %v", fi, err)
	}
	if sum, ok := bc.Sum("dir/a.txt"); !ok || sum != "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8" {
		t.Errorf("Sum = %q, %v", sum, ok)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := bc.extract(context.Background(), "dir", dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a.txt")); err != nil || string(b) != "alpha" {
		t.Errorf("extracted a.txt: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a.txt" {
		t.Errorf("extracted link: %q, %v", l, err)
	}
}

func TestReceiveBareDockerfile(t *testing.T) {
	t.Parallel()
	bc := receive(t, []byte("FROM busybox\nRUN true\n"))
	if _, df, err := bc.readDockerfile(""); err != nil || string(df) != "FROM busybox\nRUN true\n" {
		t.Fatalf("readDockerfile = %q, %v", df, err)
	}
}

func TestReadDockerfile(t *testing.T) {
	t.Parallel()
	bc := receive(t, tarOf(t, map[string]string{"dockerfile": "FROM lower\n", "sub/Build.df": "FROM sub\n"}))
	for name, want := range map[string]string{"": "FROM lower\n", "sub/Build.df": "FROM sub\n", "/sub/Build.df": "FROM sub\n"} {
		if _, df, err := bc.readDockerfile(name); err != nil || string(df) != want {
			t.Errorf("readDockerfile(%q) = %q, %v", name, df, err)
		}
	}
	_, _, err := bc.readDockerfile("nope/Dockerfile")
	if err == nil || !strings.Contains(err.Error(), "Cannot locate specified Dockerfile: nope/Dockerfile") || !errdefs.InvalidArgument(err) {
		t.Fatalf("missing Dockerfile: %v", err)
	}
}
