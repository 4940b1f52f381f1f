package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth/registry/auth"
	"berth/registry/storage/fs"
)

// syncBuffer is a log sink the handler writes from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type regEnv struct {
	url  string
	root string
	logs *syncBuffer
}

func startRegistry(t *testing.T, mode string) *regEnv {
	t.Helper()
	root := t.TempDir()
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	acc := auth.NewAccounts(d)
	for _, u := range []string{"alice", "carol"} {
		if err := acc.Add(t.Context(), u, u+"-pw", false, u == "carol"); err != nil {
			t.Fatal(err)
		}
	}
	if err := acc.Add(t.Context(), "root", "root-pw", true, false); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Auth.Mode = mode
	logs := &syncBuffer{}
	h, err := NewHandler(t.Context(), cfg, d, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &regEnv{url: ts.URL, root: root, logs: logs}
}

func call(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func basicHdr(user string) []string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, user+"-pw")
	return []string{"Authorization", req.Header.Get("Authorization")}
}

func errCode(t *testing.T, res *http.Response) string {
	t.Helper()
	var body struct{ Errors []struct{ Code string } }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("no error body: %v", err)
	}
	return body.Errors[0].Code
}

func TestBasicModeNamespaces(t *testing.T) {
	t.Parallel()
	e := startRegistry(t, "basic")
	blob := []byte("layer")
	d := digest.FromBytes(blob)
	push := func(repo string, hdr []string) *http.Response {
		return call(t, "POST", e.url+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), blob, hdr...)
	}
	if res := push("alice/app", basicHdr("alice")); res.StatusCode != 201 {
		t.Fatalf("own namespace push: %d", res.StatusCode)
	}
	res := push("carol/app", basicHdr("alice"))
	if res.StatusCode != 403 || errCode(t, res) != "DENIED" {
		t.Fatalf("foreign push: %d", res.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(e.root, "repositories", "carol")); !os.IsNotExist(err) {
		t.Fatalf("denied push stored something: %v", err)
	}
	res = push("toplevel", basicHdr("alice"))
	if res.StatusCode != 403 {
		t.Fatalf("user top-level push: %d", res.StatusCode)
	}
	if res := push("toplevel", basicHdr("root")); res.StatusCode != 201 {
		t.Fatalf("admin top-level push: %d", res.StatusCode)
	}
	if res := push("carol/app", basicHdr("carol")); res.StatusCode != 201 {
		t.Fatalf("carol push: %d", res.StatusCode)
	}
	// carol's namespace is public, alice's private.
	if res := call(t, "GET", e.url+"/v2/carol/app/blobs/"+d.String(), nil); res.StatusCode != 200 {
		t.Fatalf("anonymous public pull: %d", res.StatusCode)
	}
	res = call(t, "GET", e.url+"/v2/alice/app/blobs/"+d.String(), nil)
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Basic realm="berth-registry"` || errCode(t, res) != "UNAUTHORIZED" {
		t.Fatalf("anonymous private pull: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res := call(t, "GET", e.url+"/v2/_catalog", nil, basicHdr("alice")...); res.StatusCode != 403 {
		t.Fatalf("user catalog: %d", res.StatusCode)
	}
	if res := call(t, "GET", e.url+"/v2/_catalog", nil, basicHdr("root")...); res.StatusCode != 200 {
		t.Fatalf("admin catalog: %d", res.StatusCode)
	}
}

var challengeRe = regexp.MustCompile(`^Bearer realm="([^"]+)",service="([^"]+)"(?:,scope="([^"]+)")?`)

// TestTokenModeFlow drives the flow Docker clients follow: challenge,
// token request, retry with the bearer token.
func TestTokenModeFlow(t *testing.T) {
	t.Parallel()
	e := startRegistry(t, "token")
	res := call(t, "GET", e.url+"/v2/", nil)
	m := challengeRe.FindStringSubmatch(res.Header.Get("WWW-Authenticate"))
	if res.StatusCode != 401 || m == nil || m[1] != e.url+"/token" || m[2] != "berth-registry" {
		t.Fatalf("ping: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	blob := []byte("token layer")
	d := digest.FromBytes(blob)
	uploadURL := e.url + "/v2/alice/app/blobs/uploads/?digest=" + d.String()
	res = call(t, "POST", uploadURL, blob)
	m = challengeRe.FindStringSubmatch(res.Header.Get("WWW-Authenticate"))
	if res.StatusCode != 401 || m == nil || m[3] != "repository:alice/app:pull,push" {
		t.Fatalf("upload challenge: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	res = call(t, "GET", m[1]+"?service="+m[2]+"&scope="+m[3], nil, basicHdr("alice")...)
	var tr struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || tr.Token == "" {
		t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	bearer := []string{"Authorization", "Bearer " + tr.Token}
	if res := call(t, "POST", uploadURL, blob, bearer...); res.StatusCode != 201 {
		t.Fatalf("push with token: %d", res.StatusCode)
	}
	// The token is scoped: another namespace is refused and nothing stored.
	res = call(t, "POST", e.url+"/v2/carol/app/blobs/uploads/?digest="+d.String(), blob, bearer...)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("foreign push with token: %d", res.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(e.root, "repositories", "carol")); !os.IsNotExist(err) {
		t.Fatalf("refused push stored something: %v", err)
	}
	res = call(t, "GET", e.url+"/v2/alice/app/blobs/"+d.String(), nil, "Authorization", "Bearer not.a.jwt")
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("garbage token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

func TestMetricsHealthAccessLog(t *testing.T) {
	t.Parallel()
	e := startRegistry(t, "none")
	blob := []byte("metered")
	d := digest.FromBytes(blob)
	call(t, "POST", e.url+"/v2/m/blobs/uploads/?digest="+d.String(), blob)
	call(t, "GET", e.url+"/v2/m/blobs/"+d.String(), nil)
	if res := call(t, "GET", e.url+"/healthz", nil); res.StatusCode != 200 {
		t.Fatalf("healthz %d", res.StatusCode)
	}
	res := call(t, "GET", e.url+"/metrics", nil)
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`berth_registry_http_requests_total{method="POST",route="upload",code="201"} 1`,
		`berth_registry_http_requests_total{method="GET",route="blob",code="200"} 1`,
		`berth_registry_http_request_duration_seconds_count{route="blob"} 1`,
		`berth_registry_http_request_bytes_total 7`,
		"# TYPE berth_registry_http_request_duration_seconds histogram",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line not JSON: %q", line)
		}
		if rec["msg"] == "request" && rec["route"] == "blob" && rec["status"] == float64(200) && rec["bytes_out"] == float64(7) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access log line for the blob GET:\n%s", e.logs.String())
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"full", `{"addr":"127.0.0.1:0","root":"/srv/reg","auth":{"mode":"token","service":"s","issuer":"i","tokenTTL":"10m"},"logFormat":"json","uploadTTL":"1h"}`, true},
		{"empty", `{}`, true},
		{"unknown field", `{"adress":"x"}`, false},
		{"bad mode", `{"auth":{"mode":"ldap"}}`, false},
		{"bad duration", `{"uploadTTL":"soon"}`, false},
		{"half tls", `{"tls":{"cert":"c"}}`, false},
		{"gc", `{"gc":{"interval":"6h","grace":"30m","deleteUntagged":true}}`, true},
		{"gc too often", `{"gc":{"interval":"1s"}}`, false},
		{"gc off", `{"gc":{"interval":"0s"}}`, true},
		{"mirrors", `{"mirrors":[{"namespace":"hub","url":"https://registry-1.docker.io","default":true,"ttl":"1m"},{"namespace":"ghcr","url":"https://ghcr.io","username":"u","password":"p"}]}`, true},
		{"mirror namespace", `{"mirrors":[{"namespace":"Hub/x","url":"https://r.example"}]}`, false},
		{"mirror twice", `{"mirrors":[{"namespace":"a","url":"https://r.example"},{"namespace":"a","url":"https://s.example"}]}`, false},
		{"mirror defaults", `{"mirrors":[{"namespace":"a","url":"https://r.example","default":true},{"namespace":"b","url":"https://s.example","default":true}]}`, false},
		{"mirror url", `{"mirrors":[{"namespace":"a","url":"ftp://r.example"}]}`, false},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(p)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if tc.name == "full" && (cfg.Auth.TokenTTL.String() != "10m0s" || cfg.Root != "/srv/reg") {
			t.Errorf("full: %+v", cfg)
		}
	}
}
