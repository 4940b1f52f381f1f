package integration

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy stands between the daemon and a registry on loopback: it
// records blob requests and can slow blob bodies down or cut them.
type faultProxy struct {
	*httptest.Server
	host string

	mu       sync.Mutex
	gets     map[string]int   // blob digest -> GETs
	ranges   []string         // Range headers of blob GETs
	sent     map[string]int64 // blob digest -> body bytes sent
	rate     int64            // body bytes per second; 0 is unlimited
	cutAfter int64            // cut the next blob body longer than this, once
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &faultProxy{gets: map[string]int{}, sent: map[string]int64{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := strings.Index(r.URL.Path, "/blobs/sha256:")
		if r.Method != http.MethodGet || i < 0 {
			rp.ServeHTTP(w, r)
			return
		}
		dgst := r.URL.Path[i+len("/blobs/"):]
		p.mu.Lock()
		p.gets[dgst]++
		if rg := r.Header.Get("Range"); rg != "" {
			p.ranges = append(p.ranges, rg)
		}
		p.mu.Unlock()
		rp.ServeHTTP(&proxyWriter{ResponseWriter: w, p: p, dgst: dgst}, r)
	}))
	t.Cleanup(p.Close)
	p.host = strings.TrimPrefix(p.URL, "http://")
	return p
}

func (p *faultProxy) set(rate, cutAfter int64) {
	p.mu.Lock()
	p.rate, p.cutAfter = rate, cutAfter
	p.mu.Unlock()
}

func (p *faultProxy) state() (map[string]int, []string, map[string]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gets, sent := map[string]int{}, map[string]int64{}
	for k, v := range p.gets {
		gets[k] = v
	}
	for k, v := range p.sent {
		sent[k] = v
	}
	return gets, append([]string(nil), p.ranges...), sent
}

type proxyWriter struct {
	http.ResponseWriter
	p    *faultProxy
	dgst string
	n    int64
}

func (w *proxyWriter) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		chunk := b[:min(len(b), 32<<10)]
		w.p.mu.Lock()
		cut := w.p.cutAfter
		if cut > 0 && w.n+int64(len(chunk)) > cut {
			w.p.cutAfter = 0
		}
		w.p.mu.Unlock()
		if cut > 0 && w.n+int64(len(chunk)) > cut {
			w.ResponseWriter.Write(chunk[:cut-w.n])
			w.ResponseWriter.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		n, err := w.ResponseWriter.Write(chunk)
		w.n += int64(n)
		w.p.mu.Lock()
		w.p.sent[w.dgst] += int64(n)
		rate := w.p.rate
		w.p.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if rate > 0 {
			w.ResponseWriter.(http.Flusher).Flush()
			time.Sleep(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
		}
		b = b[len(chunk):]
	}
	return total, nil
}

// randomTar is a rootfs tar with one incompressible file of size bytes.
func randomTar(t *testing.T, seed int64, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "payload", Mode: 0o644, Size: int64(size), ModTime: time.Unix(1700000000, 0)})
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}

// pushRandomImage imports a one-layer image of size random bytes, pushes
// it to reg as repo:v1 and removes it locally; it returns the image ID.
func pushRandomImage(t *testing.T, d *daemon, reg, repo string, seed int64, size int) string {
	t.Helper()
	ref := reg + "/" + repo + ":v1"
	r := d.berthIn(bytes.NewReader(randomTar(t, seed, size)), "import", "-", ref)
	if r.Code != 0 {
		t.Fatalf("import: %s", r)
	}
	d.must("push", ref)
	d.must("rmi", ref)
	return strings.TrimSpace(r.Stdout)
}

func TestPullThroughCutConnection(t *testing.T) {
	t.Parallel()
	reg := startCNCFRegistry(t, nil)
	proxy := newFaultProxy(t, reg)
	d := startDaemon(t)
	id := pushRandomImage(t, d, reg, "berth-it/cut", 1, 8<<20)
	proxy.set(0, 3<<20)
	d.must("pull", proxy.host+"/berth-it/cut:v1")
	_, ranges, _ := proxy.state()
	if len(ranges) != 1 || ranges[0] != "bytes=3145728-" {
		t.Fatalf("after a cut at 3 MiB the client asked for %q", ranges)
	}
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc", proxy.host+"/berth-it/cut:v1")); got != id {
		t.Fatalf("pulled %q, pushed %q", got, id)
	}
}

func TestPullResumesAfterDaemonKill(t *testing.T) {
	t.Parallel()
	reg := startCNCFRegistry(t, nil)
	proxy := newFaultProxy(t, reg)
	d := startDaemon(t)
	id := pushRandomImage(t, d, reg, "berth-it/killed", 2, 12<<20)
	ref := proxy.host + "/berth-it/killed:v1"

	proxy.set(2<<20, 0) // 2 MB/s: the layer takes 6 s
	pull := exec.Command(berthBin, "-H", d.Host, "pull", ref)
	pull.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "cfg"))
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pull.Wait() }()
	var got int64
	for deadline := time.Now().Add(20 * time.Second); got < 3<<20 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _, sent := proxy.state()
		for _, n := range sent {
			got = max(got, n)
		}
	}
	if got < 3<<20 {
		t.Fatalf("only %d bytes went out", got)
	}
	// kill -9 the daemon in the middle of the layer, then start it again
	// on the same data root.
	d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
	if err := <-done; err == nil {
		t.Fatal("pull succeeded although the daemon was killed")
	}
	d.start()
	proxy.set(0, 0)
	d.must("pull", ref)

	_, ranges, _ := proxy.state()
	if len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=") || ranges[0] == "bytes=0-" {
		t.Fatalf("the retried pull asked for %q, want the rest of the layer", ranges)
	}
	var from int64
	if _, err := fmt.Sscanf(ranges[0], "bytes=%d-", &from); err != nil || from < 2<<20 {
		t.Fatalf("resumed from %q", ranges[0])
	}
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc", ref)); got != id {
		t.Fatalf("pulled %q, pushed %q", got, id)
	}
	// The partial download was used up: nothing stays in the ingest area.
	entries, _ := os.ReadDir(filepath.Join(d.DataRoot, "content", "ingest"))
	if len(entries) != 0 {
		t.Fatalf("%d ingests left", len(entries))
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	t.Parallel()
	reg := startCNCFRegistry(t, nil)
	proxy := newFaultProxy(t, reg)
	d := startDaemon(t)
	pushRandomImage(t, d, reg, "berth-it/shared", 3, 6<<20)
	proxy.set(6<<20, 0) // slow enough for the pulls to overlap
	ref := proxy.host + "/berth-it/shared:v1"
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCmd(t, nil, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "cfg")}, berthBin, "-H", d.Host, "pull", ref)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Code != 0 {
			t.Fatalf("pull: %s", r)
		}
	}
	// The layer is downloaded once; the config (a few hundred bytes) may
	// be fetched by each pull that started before another stored it.
	gets, _, sent := proxy.state()
	layers := 0
	for dgst, n := range gets {
		if sent[dgst] < 1<<20 {
			continue
		}
		layers++
		if n != 1 {
			t.Errorf("layer %s downloaded %d times by three concurrent pulls", dgst, n)
		}
	}
	if layers != 1 {
		t.Errorf("%d layers seen, want 1: %v", layers, gets)
	}
}
