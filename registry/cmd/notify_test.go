package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestServeDeliversEventsAtShutdown: events still queued for a slow
// webhook when `serve` is stopped are delivered before it returns.
func TestServeDeliversEventsAtShutdown(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		var env struct{ Events []json.RawMessage }
		json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		got += len(env.Events)
		mu.Unlock()
	}))
	defer hook.Close()
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "registry.json")
	cfg := fmt.Sprintf(`{"root":%q,"notifications":{"endpoints":[{"name":"slow","url":%q}]}}`, t.TempDir(), hook.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath, "--addr", addr}, strings.NewReader(""), &bytes.Buffer{}, &logs)
	}()
	waitUp(t, addr)
	const pushes = 4
	for i := range pushes {
		b := []byte{byte(i)}
		res, err := http.Post("http://"+addr+"/v2/app/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", bytes.NewReader(b))
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("push: %v %v", err, res)
		}
		res.Body.Close()
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if got != pushes {
		t.Fatalf("webhook had %d of %d events when serve returned", got, pushes)
	}
}

func waitUp(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get("http://" + addr + "/v2/"); err == nil {
			res.Body.Close()
			return
		}
	}
	t.Fatal("registry did not come up")
}
