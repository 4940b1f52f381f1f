package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestServerKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"docker.io":                   DockerHubKey,
		"https://index.docker.io/v1/": DockerHubKey,
		"registry-1.docker.io":        DockerHubKey,
		"":                            DockerHubKey,
		"localhost:5000":              "localhost:5000",
		"https://Reg.Example:443/v2/": "reg.example:443",
		"http://127.0.0.1:5000":       "127.0.0.1:5000",
	} {
		if got := ServerKey(in); got != want {
			t.Errorf("ServerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	orig := `{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}},"currentContext":"x","proxies":{"default":{"httpProxy":"p"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "docker.io")
	if err != nil || got.Username != "hub" || got.Password != "secret" {
		t.Fatalf("Get(docker.io) = %+v, %v", got, err)
	}
	if err := c.Store(ctx, "localhost:5000", AuthConfig{Username: "u", Password: "p:w"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(ctx, "https://tok.example/", AuthConfig{Username: "t", IdentityToken: "refresh"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Erase(ctx, "index.docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config.json mode: %v %v", st, err)
	}
	var raw map[string]json.RawMessage
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"currentContext", "proxies", "auths"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("saved config lost %q: %s", k, data)
		}
	}
	c2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		server string
		want   AuthConfig
		err    error
	}{
		{"localhost:5000", AuthConfig{Username: "u", Password: "p:w", ServerAddress: "localhost:5000"}, nil},
		{"tok.example", AuthConfig{Username: "t", IdentityToken: "refresh", ServerAddress: "tok.example"}, nil},
		{"docker.io", AuthConfig{}, ErrNotFound},
	}
	for _, tt := range tests {
		got, err := c2.Get(ctx, tt.server)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Get(%q) = %+v, %v; want %+v, %v", tt.server, got, err, tt.want, tt.err)
		}
	}
}

func TestLoadMissingAndDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	d, err := Dir()
	if err != nil || d != dir {
		t.Fatalf("Dir() = %q, %v; want %q", d, err, dir)
	}
	c, err := Load(filepath.Join(dir, "nowhere"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "localhost:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on empty config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("Load accepted a corrupt config.json")
	}
}

// fakeHelper is a docker-credential-berthtest speaking the helper protocol
// with one file per server under $BERTHTEST_STORE.
const fakeHelper = `#!/bin/sh
set -e
key() { printf %s "$1" | sha256sum | cut -c1-16; }
case "$1" in
store)
	in=$(cat)
	url=$(printf %s "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
	printf %s "$in" > "$BERTHTEST_STORE/$(key "$url")" ;;
get)
	url=$(cat)
	f="$BERTHTEST_STORE/$(key "$url")"
	if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
	cat "$f" ;;
erase)
	url=$(cat)
	f="$BERTHTEST_STORE/$(key "$url")"
	if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
	rm "$f" ;;
list)
	sep=""; printf "{"
	for f in "$BERTHTEST_STORE"/*; do
		[ -f "$f" ] || continue
		u=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$f")
		n=$(sed -n 's/.*"Username":"\([^"]*\)".*/\1/p' "$f")
		printf '%s"%s":"%s"' "$sep" "$u" "$n"; sep=","
	done
	printf "}" ;;
*) echo "unknown action $1"; exit 1 ;;
esac
`

func TestCredentialHelper(t *testing.T) {
	bin, store := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(fakeHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("BERTHTEST_STORE", store)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"),
		[]byte(`{"credsStore":"berthtest","credHelpers":{"plain.example":""}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "docker.io"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before store: %v, want ErrNotFound", err)
	}
	if err := c.Store(ctx, "docker.io", AuthConfig{Username: "hub", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(ctx, "localhost:5000", AuthConfig{Username: "ignored", IdentityToken: "idtok"}); err != nil {
		t.Fatal(err)
	}
	// A per-registry "" helper means the file itself.
	if err := c.Store(ctx, "plain.example", AuthConfig{Username: "f", Password: "g"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		server string
		want   AuthConfig
	}{
		{"https://index.docker.io/v1/", AuthConfig{Username: "hub", Password: "pw", ServerAddress: DockerHubKey}},
		{"localhost:5000", AuthConfig{IdentityToken: "idtok", ServerAddress: "localhost:5000"}},
		{"plain.example", AuthConfig{Username: "f", Password: "g", ServerAddress: "plain.example"}},
	}
	for _, tt := range tests {
		got, err := c.Get(ctx, tt.server)
		if err != nil || got != tt.want {
			t.Errorf("Get(%q) = %+v, %v; want %+v", tt.server, got, err, tt.want)
		}
	}
	list, err := NewHelper("berthtest").List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[DockerHubKey] != "hub" || list["localhost:5000"] != "<token>" {
		t.Fatalf("List = %v", list)
	}
	if err := c.Erase(ctx, "docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := c.Erase(ctx, "docker.io"); err != nil {
		t.Fatalf("second Erase: %v", err)
	}
	if _, err := c.Get(ctx, "docker.io"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after erase: %v, want ErrNotFound", err)
	}
	if _, err := NewHelper("berthtest-missing").Get(ctx, "x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("missing helper: %v, want an exec error", err)
	}
}

func TestRegistryAuthHeader(t *testing.T) {
	t.Parallel()
	a := AuthConfig{Username: "u", Password: "p?>>", ServerAddress: "localhost:5000"}
	h, err := EncodeHeader(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHeader(h)
	if err != nil || got != a {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Unpadded standard base64, as some clients send.
	raw := `{"identitytoken":"tok","serveraddress":"reg.example"}`
	for _, h := range []string{base64.RawStdEncoding.EncodeToString([]byte(raw)), base64.URLEncoding.EncodeToString([]byte(raw))} {
		got, err := DecodeHeader(h)
		if err != nil || got.IdentityToken != "tok" || got.ServerAddress != "reg.example" {
			t.Errorf("DecodeHeader(%q) = %+v, %v", h, got, err)
		}
	}
	if got, err := DecodeHeader(""); err != nil || !got.Empty() {
		t.Errorf("empty header: %+v, %v", got, err)
	}
	if _, err := DecodeHeader("!!!"); err == nil {
		t.Error("garbage header accepted")
	}
}
