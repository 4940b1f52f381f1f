package integration

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommitSaveLoadRun is issue 5's sequence end to end.
func TestCommitSaveLoadRun(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	busybox := d.importBusybox("busybox:latest")
	d.must("run", "--name", "src", "busybox", "sh", "-c", "mkdir /data && echo '<h1>hello from berth</h1>' > /data/index.html && rm /etc/group")
	id := strings.TrimSpace(d.must("commit", "-a", "Berth Tester <tester@example.invalid>", "-m", "add the page", "src", "site:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	got := d.must("image", "inspect", "-f", "{{.Author}}|{{.Comment}}|{{.Parent}}|{{len .RootFS.Layers}}|{{.Container}}", "site:v1")
	ctr := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "src"))
	if want := "Berth Tester <tester@example.invalid>|add the page|" + busybox + "|2|" + ctr + "\n"; got != want {
		t.Fatalf("inspect of the commit:\n got %q\nwant %q", got, want)
	}
	if hist := d.must("history", "--format", "{{.CreatedBy}}|{{.Comment}}", "site:v1"); !strings.HasPrefix(hist, "sh -c mkdir /data") || !strings.Contains(hist, "|add the page\n") {
		t.Fatalf("history: %q", hist)
	}
	// The deletion is a whiteout: the new image lacks /etc/group.
	if r := d.berth("run", "--rm", "site:v1", "cat", "/etc/group"); r.Code == 0 {
		t.Fatalf("deleted file is back: %s", r)
	}
	d.must("tag", "site:v1", "site:v2")
	d.must("tag", "site:v1", "site:v3")
	if got := d.must("rmi", "site:v3"); got != "Untagged: site:v3\n" {
		t.Fatalf("rmi one tag: %q", got)
	}
	archive := filepath.Join(t.TempDir(), "site.tar")
	d.must("save", "-o", archive, "site:v1", "site:v2")
	d.must("rm", "src")
	d.must("rmi", "site:v1", "site:v2")
	if out := d.must("images", "-q", "site"); out != "" {
		t.Fatalf("images left: %q", out)
	}
	out := d.must("load", "-i", archive)
	if !strings.Contains(out, "Loaded image: site:v1") || !strings.Contains(out, "Loaded image: site:v2") {
		t.Fatalf("load: %q", out)
	}
	if got := d.must("run", "--rm", "site:v2", "cat", "/data/index.html"); got != "<h1>hello from berth</h1>\n" {
		t.Fatalf("run the loaded image: %q", got)
	}

	d.must("run", "--name", "src2", "site:v1", "true")
	d.must("commit", "-c", `CMD ["/bin/httpd","-f","-h","/data"]`, "src2", "site:httpd")
	d.must("run", "-d", "--name", "web", "site:httpd")
	ip := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
	if ip == "" {
		t.Fatal("no IP address")
	}
	body := fetch(t, "http://"+ip+"/")
	if body != "<h1>hello from berth</h1>\n" {
		t.Fatalf("page from %s: %q", ip, body)
	}
}

// fetch GETs url (a container address on the test daemon's own bridge),
// retrying while the server starts.
func fetch(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == 200 {
			return string(b)
		}
		last = err
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func TestCommitPauseAndEmptyLayer(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "busy", "busybox", "sleep", "1000")
	since := time.Now().Format(time.RFC3339Nano)
	d.must("commit", "busy", "snap:paused")
	d.must("commit", "--pause=false", "busy", "snap:live")
	until := time.Now().Add(time.Second).Format(time.RFC3339Nano)
	ev := d.must("events", "--since", since, "--until", until, "--filter", "container=busy", "--format", "{{.Action}}")
	if got := strings.Fields(ev); strings.Join(got, " ") != "pause commit unpause commit" {
		t.Fatalf("events: %q", got)
	}
	// Nothing changed, yet the image gets a (valid, empty) layer as Docker's.
	if got := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", "snap:live"); got != "2\n" {
		t.Fatalf("layers: %q", got)
	}
	if r := d.berth("commit", "-c", "FROM scratch", "busy", "x:y"); r.Code != 1 || !strings.Contains(r.Stderr, "FROM is not a valid change command") {
		t.Fatalf("bad change: %s", r)
	}
	if r := d.berth("commit", "nosuch", "x:y"); r.Code != 1 || !strings.Contains(r.Stderr, "No such container: nosuch") {
		t.Fatalf("unknown container: %s", r)
	}
}
