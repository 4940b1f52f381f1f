package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	steps := []struct {
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"pw1\n", []string{"user", "add", "alice", "--password-stdin", "--root", root}, 0, ""},
		{"pw2\n", []string{"user", "add", "--admin", "--public", "--root", root, "--password-stdin", "boss"}, 0, ""},
		{"pw\n", []string{"user", "add", "alice", "--password-stdin", "--root", root}, 1, ""},
		{"pw\n", []string{"user", "add", "Bad/Name", "--password-stdin", "--root", root}, 2, ""},
		{"", []string{"user", "add", "--root", root}, 2, ""},
		{"", []string{"user", "ls", "--root", root}, 0, "NAME   ADMIN  NAMESPACE\nalice  false  private\nboss   true   public\n"},
		{"pw3\n", []string{"user", "passwd", "alice", "--password-stdin", "--root", root}, 0, ""},
		{"pw3\n", []string{"user", "passwd", "nobody", "--password-stdin", "--root", root}, 1, ""},
		{"", []string{"user", "rm", "alice", "--root", root}, 0, ""},
		{"", []string{"user", "rm", "alice", "--root", root}, 1, ""},
		{"", []string{"user", "frob", "--root", root}, 2, ""},
		{"", []string{"nonsense"}, 2, ""},
		{"", []string{"serve", "--auth", "kerberos", "--root", root}, 2, ""},
	}
	for _, s := range steps {
		code, out, stderr := runCmd(t, s.stdin, s.args...)
		if code != s.code || s.out != "" && out != s.out {
			t.Fatalf("%v: exit %d (want %d), stdout %q, stderr %q", s.args, code, s.code, out, stderr)
		}
	}
	_, out, _ := runCmd(t, "", "user", "ls", "--json", "--root", root)
	var users []struct {
		Name  string
		Admin bool
	}
	if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 1 || users[0].Name != "boss" || !users[0].Admin {
		t.Fatalf("ls --json = %s (%v)", out, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServe runs `serve` from a config file with flags overriding it, talks
// to it, and stops it the way a signal does.
func TestServe(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "registry.json")
	cfg := fmt.Sprintf(`{"addr":"127.0.0.1:1","root":%q,"auth":{"mode":"none"},"logFormat":"text"}`, root)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath, "--addr", addr, "--log-format", "json"}, strings.NewReader(""), &bytes.Buffer{}, &logs)
	}()
	var res *http.Response
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err = http.Get("http://" + addr + "/v2/"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("registry did not come up: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("GET /v2/: %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d, logs:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"registry listening"`) {
		t.Fatalf("no JSON startup log:\n%s", logs.String())
	}
}
