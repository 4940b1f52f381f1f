package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// cncfRegistry is where Debian's docker-registry package installs the CNCF
// registry (distribution) binary.
const cncfRegistry = "/usr/bin/docker-registry"

// registry is a registry process on loopback with storage of its own.
type registry struct {
	name string // "CNCF registry", "berth registry"
	addr string // host:port
	stop func()
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCNCF runs the CNCF registry with a private config: loopback only,
// filesystem storage in a temp dir, deletes enabled, no auth. It returns
// nil when the registry is not installed.
func startCNCF(b *testing.B) *registry {
	b.Helper()
	if _, err := os.Stat(cncfRegistry); err != nil {
		return nil
	}
	dir := b.TempDir()
	addr := freeAddr(b)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	stop := startProcess(b, addr, cncfRegistry, "serve", path)
	return &registry{name: "CNCF registry", addr: addr, stop: func() { stop(); os.RemoveAll(dir) }}
}

// startBerthRegistry runs `berth registry serve` (the real binary) on a
// temp root without auth.
func startBerthRegistry(b *testing.B) *registry {
	b.Helper()
	addr := freeAddr(b)
	dir := b.TempDir()
	stop := startProcess(b, addr, berthBinary(b), "registry", "serve", "--root", dir, "--addr", addr, "--auth", "none")
	return &registry{name: "berth registry", addr: addr, stop: func() { stop(); os.RemoveAll(dir) }}
}

// startProcess starts a server and waits until GET /v2/ answers on addr.
// The server is stopped by its PID when stop is called or b ends.
func startProcess(b *testing.B, addr, bin string, args ...string) (stop func()) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	b.Cleanup(stop)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get("http://" + addr + "/v2/"); err == nil {
			res.Body.Close()
			return stop
		}
		select {
		case <-done:
			b.Fatalf("%s exited:\n%s", bin, log.String())
		default:
		}
	}
	b.Fatalf("%s did not answer on %s:\n%s", bin, addr, log.String())
	return stop
}

// pushBlob uploads blob to repo of the registry at base in one POST and
// one PUT, the way most clients push a small blob.
func pushBlob(ctx context.Context, client *http.Client, base, repo string, blob []byte) (digest.Digest, error) {
	d := digest.FromBytes(blob)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("blob upload %s: %w", d, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("blob upload %s: POST: %s", d, res.Status)
	}
	loc, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if loc, err = loc.Parse(res.Header.Get("Location")); err != nil {
		return "", fmt.Errorf("blob upload %s: location: %w", d, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(blob))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if res, err = client.Do(req); err != nil {
		return "", fmt.Errorf("blob upload %s: %w", d, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("blob upload %s: PUT: %s", d, res.Status)
	}
	return d, nil
}

// pushManifest stores manifest (of mediaType) under repo:tag.
func pushManifest(ctx context.Context, client *http.Client, base, repo, tag, mediaType string, manifest []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("manifest %s:%s: %w", repo, tag, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("manifest %s:%s: PUT: %s", repo, tag, res.Status)
	}
	return nil
}
