package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
	"berth/errdefs"
	"berth/image"
	"berth/remote/credentials"
)

// startRegistryDaemon serves the API with reg as the distribution and auth
// backends, and points DOCKER_CONFIG at a fresh directory.
func startRegistryDaemon(t *testing.T, reg *apitest.Registry) (string, string) {
	t.Helper()
	imgs := apitest.NewImages(time.Now)
	h := api.New(api.Options{Images: imgs, System: &apitest.System{Images: imgs}, Distribution: reg, Auth: reg})
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "berth.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := filepath.Join(dir, "cfg")
	t.Setenv("DOCKER_CONFIG", cfg)
	return "unix://" + filepath.Join(dir, "berth.sock"), cfg
}

func TestLoginLogout(t *testing.T) {
	reg := &apitest.Registry{Users: map[string]string{"alice": "secret"}}
	host, cfgDir := startRegistryDaemon(t, reg)
	cfgFile := filepath.Join(cfgDir, "config.json")

	out, errOut, code := run(t, host, strings.NewReader("nope\n"), "login", "-u", "alice", "--password-stdin", "127.0.0.1:5001")
	if code != 1 || out != "" || errOut != "Error response from daemon: login attempt to http://127.0.0.1:5001/v2/ failed with status: 401 Unauthorized\n" {
		t.Fatalf("wrong password: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(cfgFile); !os.IsNotExist(err) {
		t.Fatalf("config written after a failed login: %v", err)
	}

	out, errOut, code = run(t, host, strings.NewReader("secret\n"), "login", "-u", "alice", "--password-stdin", "127.0.0.1:5001")
	if code != 0 || out != "Login Succeeded\n" || !strings.Contains(errOut, "WARNING! Your credentials are stored unencrypted in '"+cfgFile+"'.") {
		t.Fatalf("login: %d %q %q", code, out, errOut)
	}
	data, _ := os.ReadFile(cfgFile)
	if !strings.Contains(string(data), `"127.0.0.1:5001"`) || !strings.Contains(string(data), `"auth": "YWxpY2U6c2VjcmV0"`) {
		t.Fatalf("config.json:\n%s", data)
	}
	if got := reg.Logins[len(reg.Logins)-1]; got.ServerAddress != "127.0.0.1:5001" || got.Password != "secret" {
		t.Fatalf("daemon got %+v", got)
	}

	// Stored credentials are reused without asking.
	out, _, code = run(t, host, nil, "login", "127.0.0.1:5001")
	if code != 0 || out != "Authenticating with existing credentials...\nLogin Succeeded\n" {
		t.Fatalf("login again: %d %q", code, out)
	}

	// A pull carries them in X-Registry-Auth, to that registry only.
	reg.Progress = []image.Progress{{Status: "Status: Image is up to date for 127.0.0.1:5001/ns/app:v1"}}
	if _, errOut, code := run(t, host, nil, "pull", "127.0.0.1:5001/ns/app:v1"); code != 0 {
		t.Fatalf("pull: %s", errOut)
	}
	if a := reg.Pulls[0].Opts.Auth; a.Username != "alice" || a.Password != "secret" || a.ServerAddress != "127.0.0.1:5001" {
		t.Fatalf("pull auth %+v", a)
	}
	if _, _, code := run(t, host, nil, "pull", "127.0.0.1:5002/ns/app:v1"); code != 0 || !reg.Pulls[1].Opts.Auth.Empty() {
		t.Fatalf("credentials sent to another registry: %+v", reg.Pulls[1].Opts.Auth)
	}

	out, _, code = run(t, host, nil, "logout", "127.0.0.1:5001")
	if code != 0 || out != "Removing login credentials for 127.0.0.1:5001\n" {
		t.Fatalf("logout: %d %q", code, out)
	}
	cfg, err := credentials.Load(cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Get(context.Background(), "127.0.0.1:5001"); err == nil {
		t.Fatal("credentials still stored after logout")
	}
	out, _, _ = run(t, host, nil, "logout", "127.0.0.1:5001")
	if out != "Not logged in to 127.0.0.1:5001\n" {
		t.Fatalf("second logout: %q", out)
	}
}

func TestLoginArguments(t *testing.T) {
	reg := &apitest.Registry{Users: map[string]string{"alice": "secret"}, Token: "refresh"}
	host, cfgDir := startRegistryDaemon(t, reg)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
		code    int
	}{
		{"stdin without user", []string{"login", "--password-stdin", "r.example"}, "x", "Must provide --username with --password-stdin\n", 1},
		{"no tty", []string{"login", "r.example"}, "", "Error: Cannot perform an interactive login from a non TTY device\n", 1},
		{"password flag warns", []string{"login", "-u", "alice", "-p", "secret", "r.example"}, "",
			"WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n", 0},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
		if code != tt.code || !strings.HasPrefix(errOut, tt.wantErr) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, code, errOut, tt.code, tt.wantErr)
		}
	}
	// An identity token from the registry is stored instead of the password.
	data, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if !strings.Contains(string(data), `"identitytoken": "refresh"`) || strings.Contains(string(data), "c2VjcmV0") {
		t.Fatalf("config.json:\n%s", data)
	}
}

func TestPullPushOutput(t *testing.T) {
	reg := &apitest.Registry{Progress: []image.Progress{
		{ID: "v1", Status: "Pulling from ns/app", Message: true},
		{ID: "b93d71c93f73", Status: "Pulling fs layer"},
		{ID: "b93d71c93f73", Status: "Downloading", Current: 10, Total: 20},
		{ID: "b93d71c93f73", Status: "Pull complete"},
		{Status: "Digest: sha256:6fc7"},
		{Status: "Status: Downloaded newer image for r.example/ns/app:v1"},
	}}
	host, _ := startRegistryDaemon(t, reg)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pull", "r.example/ns/app:v1"}, "v1: Pulling from ns/app\nb93d71c93f73: Pulling fs layer\nb93d71c93f73: Pull complete\n" +
			"Digest: sha256:6fc7\nStatus: Downloaded newer image for r.example/ns/app:v1\nr.example/ns/app:v1\n"},
		{[]string{"pull", "-q", "r.example/ns/app"}, "r.example/ns/app:latest\n"},
		{[]string{"pull", "-a", "r.example/ns/app"}, ""},
		{[]string{"push", "-q", "r.example/ns/app:v1"}, "r.example/ns/app:v1\n"},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, host, nil, tt.args...)
		if code != 0 || (tt.want != "" && out != tt.want) {
			t.Errorf("%v: %d %q %q, want %q", tt.args, code, out, errOut, tt.want)
		}
	}
	if len(reg.Pulls) != 3 || !reg.Pulls[2].Opts.AllTags || reg.Pulls[2].Name != "r.example/ns/app" {
		t.Fatalf("pulls %+v", reg.Pulls)
	}
	if _, errOut, code := run(t, host, nil, "pull", "-a", "r.example/ns/app:v1"); code != 1 || errOut != "tag can't be used with --all-tags/-a\n" {
		t.Fatalf("pull -a with tag: %d %q", code, errOut)
	}
	reg.Err = errdefs.Errorf(errdefs.ErrNotFound, "manifest for r.example/ns/app:v9 not found: manifest unknown: manifest unknown")
	reg.Progress = nil
	_, errOut, code := run(t, host, nil, "pull", "r.example/ns/app:v9")
	if code != 1 || errOut != "Error response from daemon: manifest for r.example/ns/app:v9 not found: manifest unknown: manifest unknown\n" {
		t.Fatalf("missing tag: %d %q", code, errOut)
	}
}

// helperScript is a docker-credential-<name> that keeps one file per
// server in $BERTH_HELPER_DIR, speaking the helper protocol.
const helperScript = `#!/bin/sh
dir="$BERTH_HELPER_DIR"
key() { echo "$1" | tr '/:' '__'; }
case "$1" in
store) in=$(cat); server=$(echo "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p'); echo "$in" > "$dir/$(key "$server")" ;;
get) read -r server; f="$dir/$(key "$server")"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) read -r server; rm -f "$dir/$(key "$server")" ;;
list) echo "{}" ;;
esac
`

func TestLoginWithCredentialHelper(t *testing.T) {
	reg := &apitest.Registry{Users: map[string]string{"alice": "secret"}}
	host, cfgDir := startRegistryDaemon(t, reg)
	bin, store := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(helperScript), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("BERTH_HELPER_DIR", store)
	os.MkdirAll(cfgDir, 0o700)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, host, strings.NewReader("secret"), "login", "-u", "alice", "--password-stdin", "127.0.0.1:5001")
	if code != 0 || out != "Login Succeeded\n" || errOut != "" {
		t.Fatalf("login: %d %q %q", code, out, errOut)
	}
	saved, err := os.ReadFile(filepath.Join(store, "127.0.0.1_5001"))
	if err != nil || !strings.Contains(string(saved), `"Secret":"secret"`) {
		t.Fatalf("helper holds %q (%v)", saved, err)
	}
	// Like docker, config.json lists the server with an empty entry.
	if data, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(data), "YWxpY2U6") {
		t.Fatalf("credentials written to config.json although a helper is set:\n%s", data)
	}
	if _, errOut, code := run(t, host, nil, "pull", "127.0.0.1:5001/ns/app:v1"); code != 0 || reg.Pulls[0].Opts.Auth.Password != "secret" {
		t.Fatalf("pull with helper credentials: %q %+v", errOut, reg.Pulls)
	}
	if out, _, _ := run(t, host, nil, "logout", "127.0.0.1:5001"); out != "Removing login credentials for 127.0.0.1:5001\n" {
		t.Fatalf("logout: %q", out)
	}
	if _, err := os.Stat(filepath.Join(store, "127.0.0.1_5001")); !os.IsNotExist(err) {
		t.Fatalf("helper still holds credentials after logout: %v", err)
	}
}
