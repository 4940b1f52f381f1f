package build

import (
	"archive/tar"
	"bytes"
	"context"
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
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return buf.Bytes()
}

func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); rel != "." && !d.IsDir() {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return strings.Join(out, " ")
}

func TestReceiveContextAndIgnore(t *testing.T) {
	t.Parallel()
	body := tarOf(t, map[string]string{
		"Dockerfile": "FROM busybox\n", ".dockerignore": "*.log\nsecrets\n!secrets/public.pem\nDockerfile\n",
		"app.go": "package main", "debug.log": "x", "secrets/key.pem": "k", "secrets/public.pem": "p", "logs/a.log": "y",
	})
	dir := filepath.Join(t.TempDir(), "context")
	bc, err := receiveContext(context.Background(), bytes.NewReader(body), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	name, df, err := bc.readDockerfile("")
	if err != nil || name != "Dockerfile" || string(df) != "FROM busybox\n" {
		t.Fatalf("readDockerfile = %q, %q, %v", name, df, err)
	}
	if err := bc.applyIgnore(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The Dockerfile was read before .dockerignore removed it, as Docker does.
	// *.log is not **/*.log: logs/a.log stays.
	if got, want := listTree(t, dir), ".dockerignore app.go logs/a.log secrets/public.pem"; got != want {
		t.Fatalf("context after .dockerignore: %q, want %q", got, want)
	}
}

func TestReceiveBareDockerfile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "context")
	bc, err := receiveContext(context.Background(), strings.NewReader("FROM busybox\nRUN true\n"), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, df, err := bc.readDockerfile(""); err != nil || string(df) != "FROM busybox\nRUN true\n" {
		t.Fatalf("readDockerfile = %q, %v", df, err)
	}
}

func TestReadDockerfile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "context")
	body := tarOf(t, map[string]string{"dockerfile": "FROM lower\n", "sub/Build.df": "FROM sub\n"})
	bc, err := receiveContext(context.Background(), bytes.NewReader(body), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	for name, want := range map[string]string{"": "FROM lower\n", "sub/Build.df": "FROM sub\n", "/sub/Build.df": "FROM sub\n"} {
		if _, df, err := bc.readDockerfile(name); err != nil || string(df) != want {
			t.Errorf("readDockerfile(%q) = %q, %v", name, df, err)
		}
	}
	_, _, err = bc.readDockerfile("nope/Dockerfile")
	if err == nil || !strings.Contains(err.Error(), "Cannot locate specified Dockerfile: nope/Dockerfile") || !errdefs.InvalidArgument(err) {
		t.Fatalf("missing Dockerfile: %v", err)
	}
	if _, _, err := bc.readDockerfile("../../etc/passwd"); err == nil {
		t.Fatal("a Dockerfile outside the context was read")
	}
}
