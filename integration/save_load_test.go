package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func tarListing(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		names = append(names, hdr.Name)
	}
	sort.Strings(names)
	return names
}

// TestSaveLoad drives save and load through the berth CLI: the archive is
// Docker 25's layout, skopeo reads it, and a removed image comes back with
// its ID and tags.
func TestSaveLoad(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	id := d.importBusybox("busybox:latest")
	d.must("tag", "busybox", "example.com/team/bb:v1")
	dir := t.TempDir()
	arc := filepath.Join(dir, "bb.tar")
	if out := d.must("save", "-o", arc, "busybox", "example.com/team/bb:v1"); out != "" {
		t.Fatalf("save printed %q", out)
	}
	st, err := os.Stat(arc)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive file: %v %v", st, err)
	}
	names := strings.Join(tarListing(t, arc), " ")
	for _, want := range []string{"blobs/sha256/" + id[7:], "index.json", "manifest.json", "oci-layout", "repositories"} {
		if !strings.Contains(names, want) {
			t.Fatalf("archive lacks %s: %s", want, names)
		}
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command(skopeo, "inspect", "docker-archive:"+arc).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"Os": "linux"`) {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
	}
	d.must("rmi", "busybox", "example.com/team/bb:v1")
	if out := d.must("load", "-i", arc); out != "Loaded image: busybox:latest\nLoaded image: example.com/team/bb:v1\n" {
		t.Fatalf("load printed %q", out)
	}
	if got := d.must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--no-trunc"); got != "busybox:latest "+id+"\nexample.com/team/bb:v1 "+id+"\n" {
		t.Fatalf("images after load: %q", got)
	}

	// Compressed, through stdin, and into a store that has the image.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(mustReadFile(t, arc))
	zw.Close()
	if r := d.berthIn(&gz, "image", "load", "-q"); r.Code != 0 || r.Stdout != "Loaded image: busybox:latest\nLoaded image: example.com/team/bb:v1\n" {
		t.Fatalf("load of a gzip archive: %s", r)
	}
	if r := d.berthIn(strings.NewReader("not an archive at all"), "load"); r.Code != 1 || !strings.HasPrefix(r.Stderr, "Error response from daemon: load: ") {
		t.Fatalf("load of garbage: %s", r)
	}
	if r := d.berth("save", "-o", filepath.Join(dir, "x.tar"), "nope"); r.Code != 1 || r.Stderr != "Error response from daemon: No such image: nope:latest\n" {
		t.Fatalf("save of an unknown image: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
		t.Fatal("a failed save left its file")
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSaveLoadDockerCLI drives the same routes with the stock docker CLI,
// and crosses the CLIs: what one saves the other loads.
func TestSaveLoadDockerCLI(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	dockerCLI(t)
	id := d.importBusybox("busybox:latest")
	dir := t.TempDir()
	viaDocker := filepath.Join(dir, "docker.tar")
	if r := d.docker("save", "-o", viaDocker, "busybox"); r.Code != 0 {
		t.Fatalf("docker save: %s", r)
	}
	viaBerth := filepath.Join(dir, "berth.tar")
	d.must("save", "-o", viaBerth, "busybox")
	if !bytes.Equal(mustReadFile(t, viaDocker), mustReadFile(t, viaBerth)) {
		t.Fatal("docker save and berth save of one image differ")
	}
	r := d.docker("save", "nope")
	if b := d.berth("save", "nope"); r.Code != 1 || b.Code != 1 || r.Stderr != b.Stderr {
		t.Fatalf("unknown image:\ndocker %s\nberth %s", r, b)
	}

	d.must("rmi", "busybox")
	if r := d.docker("load", "-i", viaBerth); r.Code != 0 || r.Stdout != "Loaded image: busybox:latest\n" {
		t.Fatalf("docker load: %s", r)
	}
	if r := d.docker("image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", "busybox"); strings.TrimSpace(r.Stdout) != id+" [busybox:latest]" {
		t.Fatalf("docker inspect after load: %s", r)
	}
	if r := d.dockerIn(strings.NewReader("garbage"), "load"); r.Code != 1 || !strings.Contains(r.Stderr, "load: ") {
		t.Fatalf("docker load of garbage: %s", r)
	}
}
