package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree lists the files under dir as "path" or "path=content", sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel += "=" + strings.TrimSpace(string(b))
		}
		if d.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			rel += "->" + target
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestCpFromContainer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		dst     string // relative to a fresh temp dir; "+dir/" pre-creates dir
		want    []string
		wantErr string
	}{
		{name: "file into dir", src: "web:/etc/hostname", dst: ".", want: []string{"hostname=201255379175"}},
		{name: "file as new name", src: "web:/etc/hostname", dst: "name.txt", want: []string{"name.txt=201255379175"}},
		{name: "file into missing dir", src: "web:/etc/hostname", dst: "nodir/", wantErr: "no such directory\n"},
		{name: "file as dir", src: "web:/etc/hostname/", dst: ".", wantErr: "Error response from daemon: lstat /etc/hostname/: not a directory\n"},
		{name: "dir as new dir", src: "web:/etc", dst: "conf", want: []string{"conf", "conf/hostname=201255379175", "conf/passwd=root:x:0:0:root:/root:/bin/sh"}},
		{name: "dir into dir", src: "web:/etc", dst: "+into/", want: []string{"into", "into/etc", "into/etc/hostname=201255379175", "into/etc/passwd=root:x:0:0:root:/root:/bin/sh"}},
		{name: "dir contents", src: "web:/etc/.", dst: "+into/", want: []string{"into", "into/hostname=201255379175", "into/passwd=root:x:0:0:root:/root:/bin/sh"}},
		{name: "symlink kept", src: "web:/bin/sh", dst: ".", want: []string{"sh->busybox"}},
		{name: "symlink followed", src: "web:/bin/sh", dst: "-L", want: []string{"sh=\x7fELF busybox"}},
		{name: "missing", src: "web:/nope", dst: ".", wantErr: "Error response from daemon: Could not find the file /nope in container web\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, _ := startContainerDaemon(t, true)
			dir := t.TempDir()
			args := []string{"cp", tt.src}
			switch {
			case tt.dst == "-L":
				args = []string{"cp", "-L", tt.src, dir}
			case strings.HasPrefix(tt.dst, "+"):
				if err := os.Mkdir(filepath.Join(dir, strings.TrimPrefix(tt.dst, "+")), 0o755); err != nil {
					t.Fatal(err)
				}
				args = append(args, filepath.Join(dir, strings.TrimPrefix(tt.dst, "+"))+"/")
			default:
				args = append(args, filepath.Join(dir, tt.dst)+map[bool]string{true: "/"}[strings.HasSuffix(tt.dst, "/")])
			}
			_, errOut, code := run(t, host, nil, args...)
			if tt.wantErr != "" {
				if code != 1 || errOut != tt.wantErr {
					t.Fatalf("cp = %d %q, want the error %q", code, errOut, tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("cp = %d %q", code, errOut)
			}
			if got := tree(t, dir); !slices.Equal(got, tt.want) {
				t.Errorf("copied tree %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCpToContainer(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, true)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), "alpha\n")
	if err := os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "sub", "deep", "b.txt"), "beta\n")
	if err := os.Symlink("deep/b.txt", filepath.Join(src, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{args: []string{"cp", filepath.Join(src, "a.txt"), "web:/tmp/"}},
		{args: []string{"cp", filepath.Join(src, "a.txt"), "web:/tmp/renamed.txt"}},
		{args: []string{"cp", filepath.Join(src, "sub"), "web:/tmp"}},
		{args: []string{"cp", filepath.Join(src, "sub") + "/.", "web:/root"}},
		{args: []string{"cp", filepath.Join(src, "sub"), "web:/tmp/copy"}},
		{args: []string{"cp", filepath.Join(src, "sub"), "web:/etc/passwd"}, code: 1, wantErr: "cannot copy directory\n"},
		{args: []string{"cp", filepath.Join(src, "a.txt"), "web:/tmp/new/"}, code: 1, wantErr: "no such directory\n"},
		{args: []string{"cp", filepath.Join(src, "a.txt"), "web:/nodir/x"}, code: 1, wantErr: "Error response from daemon: Could not find the file /nodir in container web\n"},
		{args: []string{"cp", filepath.Join(src, "nope"), "web:/tmp"}, code: 1, wantErr: "lstat " + filepath.Join(src, "nope") + ": no such file or directory\n"},
		{args: []string{"cp", "a", "b"}, code: 1, wantErr: "must specify at least one container source\n"},
		{args: []string{"cp", "web:/a", "web:/b"}, code: 1, wantErr: "copying between containers is not supported\n"},
	}
	for _, s := range steps {
		_, errOut, code := run(t, host, nil, s.args...)
		if code != s.code || errOut != s.wantErr {
			t.Errorf("%q = %d %q, want %d %q", s.args, code, errOut, s.code, s.wantErr)
		}
	}
	out, _, _ := run(t, host, nil, "diff", "web")
	want := `C /root
A /root/deep
A /root/deep/b.txt
A /root/link
C /tmp
A /tmp/a.txt
A /tmp/copy
A /tmp/copy/deep
A /tmp/copy/deep/b.txt
A /tmp/copy/link
A /tmp/renamed.txt
A /tmp/sub
A /tmp/sub/deep
A /tmp/sub/deep/b.txt
A /tmp/sub/link
`
	if out != want {
		t.Errorf("diff after the copies:\n%s\nwant:\n%s", out, want)
	}
}

// TestCpTarStreams copies through "-": a tar out of the container on
// stdout, and a tar on stdin into it.
func TestCpTarStreams(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, true)
	out, errOut, code := run(t, host, nil, "cp", "web:/etc", "-")
	if code != 0 {
		t.Fatalf("cp to stdout: %d %q", code, errOut)
	}
	var names []string
	tr := tar.NewReader(strings.NewReader(out))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, " ") != "etc/ etc/hostname etc/passwd" {
		t.Errorf("tar on stdout holds %q", names)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "from-stdin.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi\n"))
	tw.Close()
	if _, errOut, code := run(t, host, &in, "cp", "-", "web:/tmp"); code != 0 {
		t.Fatalf("cp from stdin: %d %q", code, errOut)
	}
	if out, _, _ := run(t, host, nil, "diff", "web"); out != "C /tmp\nA /tmp/from-stdin.txt\n" {
		t.Errorf("diff after cp -: %q", out)
	}
	if _, errOut, code := run(t, host, strings.NewReader(""), "cp", "-", "web:/etc/passwd"); code != 1 || errOut != "destination \"web:/etc/passwd\" must be a directory\n" {
		t.Errorf("cp - onto a file: %d %q", code, errOut)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, true)
	out, _, code := run(t, host, nil, "export", "web")
	if code != 0 || !strings.Contains(out, "etc/hostname") {
		t.Fatalf("export to stdout: %d, %d bytes", code, len(out))
	}
	dst := filepath.Join(t.TempDir(), "web.tar")
	if _, errOut, code := run(t, host, nil, "export", "-o", dst, "web"); code != 0 {
		t.Fatalf("export -o: %d %q", code, errOut)
	}
	b, err := os.ReadFile(dst)
	if err != nil || string(b) != out {
		t.Errorf("export -o wrote %d bytes (%v), stdout had %d", len(b), err, len(out))
	}
	if _, errOut, code := run(t, host, nil, "export", "-o", dst, "nope"); code != 1 || errOut != "Error response from daemon: No such container: nope\n" {
		t.Errorf("export of a missing container: %d %q", code, errOut)
	}
}
