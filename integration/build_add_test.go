package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// compressed is data through an external compressor (bzip2, xz): Go's
// standard library reads bzip2 but cannot write it.
func compressed(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s is not installed: the ADD archive test needs it to make its archive", tool)
	}
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// addServer serves ADD's URLs: /data with a Last-Modified time, whose
// content the test can change, and /remote.tar.gz, an archive (which ADD
// of a URL does not extract).
func addServer(t *testing.T, archive []byte) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var data atomic.Value
	data.Store("remote v1\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/data":
			w.Header().Set("Last-Modified", "Tue, 03 Feb 2009 04:05:06 GMT")
			fmt.Fprint(w, data.Load().(string))
		case "/nolm":
			fmt.Fprint(w, "no time\n")
		case "/remote.tar.gz":
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &data
}

const addDockerfile = `FROM busybox
ADD plain.tar /x/plain/
ADD a.tar.gz /x/gz/
ADD b.tar.bz2 /x/bz2/
ADD c.tar.xz /x/xz/
ADD notar.gz /x/
COPY a.tar.gz /x/copied/
ADD {{URL}}/remote.tar.gz /x/url/
ADD --checksum=sha256:{{SUM}} {{URL}}/data /x/sum
ADD --chown=7:8 ["{{URL}}/data", "/x/renamed"]
ADD {{URL}}/nolm /x/
RUN cd /x && find . | sort && cat plain/p gz/p bz2/p xz/p sum && stat -c '%u:%g %a %Y %n' renamed sum nolm
`

// TestBuildAdd checks ADD's sources end to end, through the berth CLI
// and the stock docker CLI: local tars extracted (plain, gzip, bzip2,
// xz), a compressed file that is no tar and a COPYed tar kept as they
// are, URLs downloaded (never extracted) with the server's Last-Modified
// time (the epoch without one) and mode 0600, --checksum, --chown, and the cache of a download
// kept while its content is the same.
func TestBuildAdd(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	tarOf := func(s string) []byte { return tarBytes(t, map[string]string{"p": s + "\n"}) }
	remoteTar := gzipTar(t, map[string]string{"r": "r\n"})
	srv, remote := addServer(t, remoteTar)
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte("remote v1\n")))
	df := strings.NewReplacer("{{URL}}", srv.URL, "{{SUM}}", sum).Replace(addDockerfile)
	files := map[string]string{
		"Dockerfile": df,
		"plain.tar":  string(tarOf("plain")),
		"a.tar.gz":   string(gzipTar(t, map[string]string{"p": "gzip\n"})),
		"b.tar.bz2":  string(compressed(t, "bzip2", tarOf("bzip2"))),
		"c.tar.xz":   string(compressed(t, "xz", tarOf("xz"))),
		"notar.gz":   string(compressed(t, "gzip", []byte("not a tar\n"))),
	}
	want := strings.Join([]string{".", "./bz2", "./bz2/p", "./copied", "./copied/a.tar.gz", "./gz", "./gz/p", "./nolm", "./notar.gz",
		"./plain", "./plain/p", "./renamed", "./sum", "./url", "./url/remote.tar.gz", "./xz", "./xz/p",
		"plain", "gzip", "bzip2", "xz", "remote v1",
		fmt.Sprintf("7:8 600 %d renamed", time.Date(2009, 2, 3, 4, 5, 6, 0, time.UTC).Unix()),
		fmt.Sprintf("0:0 600 %d sum", time.Date(2009, 2, 3, 4, 5, 6, 0, time.UTC).Unix()),
		"0:0 600 0 nolm"}, "\n") + "\n" // no Last-Modified: the epoch, as Docker
	clients := []struct {
		name  string
		build func(args ...string) result
	}{
		{"berth", func(args ...string) result { return d.berth(append([]string{"build"}, args...)...) }},
		{"docker", func(args ...string) result { return d.dockerBuild("", args...) }},
	}
	for _, c := range clients {
		if c.name == "docker" {
			dockerCLI(t)
		}
		remote.Store("remote v1\n")
		dir := writeContext(t, files)
		r := c.build("--no-cache", "-t", "add:"+c.name, dir)
		if r.Code != 0 || !strings.Contains(r.Stdout, want) {
			t.Fatalf("%s build: %s\nwant the listing\n%s", c.name, r, want)
		}
		// The same downloads again: every step from the cache.
		if r := c.build(dir); r.Code != 0 || strings.Contains(r.Stdout, "Running in") {
			t.Errorf("%s: unchanged rebuild ran steps: %s", c.name, r)
		}
		// New content behind the URL: the step ADDing it runs again, and
		// the one checking its sum fails.
		remote.Store("remote v2\n")
		r = c.build(dir)
		if r.Code == 0 || !strings.Contains(r.Stderr, "digest mismatch") || !strings.Contains(r.Stderr, sum) {
			t.Errorf("%s: changed download under --checksum: %s", c.name, r)
		}
	}
	if got := d.must("run", "--rm", "add:docker", "cat", "/x/notar.gz"); got == "not a tar\n" || !strings.HasPrefix(got, "\x1f\x8b") {
		t.Errorf("a gzip file that is no tar was not kept as is: %q", got)
	}
}

// TestBuildAddRemoteCache checks that a download's step stays cached
// while the content is the same and runs again once it changes.
func TestBuildAddRemoteCache(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	srv, remote := addServer(t, nil)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/data /data\nRUN cat /data\n"})
	d.must("build", dir)
	if out := d.must("build", dir); strings.Count(out, " ---> Using cache\n") != 2 {
		t.Errorf("unchanged download:\n%s", out)
	}
	remote.Store("remote v2\n")
	out := d.must("build", dir)
	if strings.Contains(out, "Using cache") || !strings.Contains(out, "remote v2\n") {
		t.Errorf("changed download:\n%s", out)
	}
}
