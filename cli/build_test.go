package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"berth/build/ignore"
)

// TestIgnoreMatchesTheDaemon keeps the CLI's .dockerignore matcher (the
// CLI may not import the daemon's) in step with berth/build/ignore.
func TestIgnoreMatchesTheDaemon(t *testing.T) {
	t.Parallel()
	patterns := []string{
		"*.log", "/secret.txt", "node_modules", "**/*.tmp", "a/**/b", "docs/*\n!docs/keep.md", "*\n!src",
		"file?.txt", "[a-c]*.go", `esc\*aped`, "./x/../y", "# comment\n\n  spaced  ", "dir/\n!dir/sub/ok",
	}
	paths := []string{
		"a.log", "dir/a.log", "secret.txt", "x/secret.txt", "node_modules", "node_modules/p/i.js", "t.tmp",
		"deep/er/t.tmp", "a/b", "a/x/y/b", "b", "docs/keep.md", "docs/other.md", "src", "src/main.go", "Makefile",
		"file1.txt", "file12.txt", "b.go", "d.go", "esc*aped", "escXaped", "y", "x/y", "spaced", "dir/sub/ok", "dir/sub/no",
	}
	for _, p := range patterns {
		daemon, err := ignore.Read(strings.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		cli, err := readIgnore(strings.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			if d, c := daemon.Excluded(path), cli.excluded(path); d != c {
				t.Errorf("patterns %q, path %q: daemon excludes %v, CLI %v", p, path, d, c)
			}
			if d, c := daemon.SkipDir(path), cli.skipDir(path); d != c {
				t.Errorf("patterns %q, dir %q: daemon skips %v, CLI %v", p, path, d, c)
			}
		}
	}
}

func TestContextTar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"Dockerfile": "FROM busybox\n", ".dockerignore": "*.secret\nbuild\nDockerfile\n.dockerignore\n",
		"main.go": "package main\n", "key.secret": "k", "build/out.bin": "b", "src/a.go": "a",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("main.go", filepath.Join(dir, "link"))
	var buf bytes.Buffer
	if err := contextTar(&buf, dir, "Dockerfile", &contextFile{name: ".dockerfile.x", data: []byte("FROM x\n")}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	// The Dockerfile and .dockerignore travel even when excluded: the
	// daemon reads them, then drops them as the patterns say.
	want := ".dockerfile.x .dockerignore Dockerfile link main.go src/ src/a.go"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("context entries %q, want %q", got, want)
	}
}

func TestIsTarStream(t *testing.T) {
	t.Parallel()
	tarred := dockerfileTar("Dockerfile", []byte("FROM x\n"))
	for _, tt := range []struct {
		head []byte
		want bool
	}{
		{tarred, true}, {[]byte{0x1f, 0x8b, 8}, true}, {[]byte("FROM busybox\n"), false}, {[]byte("# syntax=x\n"), false},
	} {
		if got := isTarStream(tt.head); got != tt.want {
			t.Errorf("isTarStream(%q...) = %v", tt.head[:min(8, len(tt.head))], got)
		}
	}
}
