package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startBerthMirror runs `berth registry serve` whose namespace "up" mirrors
// the registry at upstream (revalidating tags after ttl); it returns the
// address and storage root.
func startBerthMirror(t *testing.T, upstream, ttl string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	cfg, _ := json.Marshal(map[string]any{
		"root":    root,
		"mirrors": []any{map[string]any{"namespace": "up", "url": "http://" + upstream, "ttl": ttl, "timeout": "5s"}},
	})
	conf := filepath.Join(dir, "registry.json")
	if err := os.WriteFile(conf, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startProcess(t, answers(addr), berthBin, "registry", "serve", "--config", conf, "--addr", addr)
	return addr, root
}

// TestRegistryMirrorBerth: berth daemon → berth registry mirror → berth
// registry, all on loopback. The daemon's registry-mirrors sends pulls of
// the upstream's images to the mirror (with ?ns=<upstream>), which caches
// them; with the upstream gone, the mirror still serves them.
func TestRegistryMirrorBerth(t *testing.T) {
	t.Parallel()
	upRoot := t.TempDir()
	upAddr := freeAddr(t)
	up := startProcess(t, answers(upAddr), berthBin, "registry", "serve", "--root", upRoot, "--addr", upAddr)
	mirror, mirrorRoot := startBerthMirror(t, upAddr, "1s")
	d := startDaemon(t)
	ref := upAddr + "/berth-it/mirrored:v1"
	id := pushRandomImage(t, d, upAddr, "berth-it/mirrored", 31, 1<<20)

	d.stop()
	cfg, _ := json.Marshal(map[string]any{"registry-mirrors": []string{"http://" + mirror}})
	if err := os.WriteFile(filepath.Join(d.dir, "daemon.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.must("pull", ref)
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc", ref)); got != id {
		t.Fatalf("pulled %q, pushed %q", got, id)
	}
	cached := filepath.Join(mirrorRoot, "repositories", "up", "berth-it", "mirrored", "_manifests", "tags", "v1")
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("the pull did not go through the mirror: %v", err)
	}

	// The upstream goes away; the mirror serves its copy (the tag is past
	// its TTL, so the mirror tries the upstream first and falls back).
	up.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); answers(upAddr)(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("upstream registry did not stop")
		}
	}
	d.must("rmi", ref)
	r := d.berth("pull", ref)
	if r.Code != 0 {
		t.Fatalf("pull with the upstream down: %s", r)
	}
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc", ref)); got != id {
		t.Fatalf("pulled %q from the mirror's cache, pushed %q", got, id)
	}
	// Nothing cached, nothing anywhere: the daemon reports it.
	if r := d.berth("pull", upAddr+"/berth-it/never:v1"); r.Code == 0 {
		t.Fatalf("pull of an image neither has: %s", r)
	}
	// Pushes still go to the mirror's own namespaces.
	own := mirror + "/mine/app:v1"
	d.must("tag", ref, own)
	d.must("push", own)
	d.must("rmi", own)
	d.must("pull", own)
}
