package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// replicaSet is berth registries over one storage behind HAProxy.
type replicaSet struct {
	lb    string   // load balancer address
	addrs []string // each replica's own address
	logs  []string // each replica's log file
}

// startReplicas runs n `berth registry serve` processes with storage (the
// --root or --config flags) and auth mode, and HAProxy balancing requests
// round robin over them: no stickiness, nothing shared but the storage.
func startReplicas(t *testing.T, n int, storage []string, mode string) *replicaSet {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (Debian package haproxy)")
	}
	dir := t.TempDir()
	rs := &replicaSet{}
	var servers strings.Builder
	for i := range n {
		addr := freeAddr(t)
		logPath := filepath.Join(dir, fmt.Sprintf("replica%d.log", i))
		args := append([]string{"registry", "serve", "--addr", addr, "--auth", mode, "--log-format", "json"}, storage...)
		startLogged(t, logPath, answers(addr), berthBin, args...)
		rs.addrs = append(rs.addrs, addr)
		rs.logs = append(rs.logs, logPath)
		fmt.Fprintf(&servers, "    server r%d %s\n", i, addr)
	}
	rs.lb = freeAddr(t)
	cfg := fmt.Sprintf(`global
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend registry
    bind %s
    default_backend replicas
backend replicas
    balance roundrobin
%s`, rs.lb, servers.String())
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startLogged(t, filepath.Join(dir, "haproxy.log"), answers(rs.lb), haproxy, "-db", "-f", cfgPath)
	return rs
}

// startLogged runs a server process writing to logPath, stopped by PID at
// the end of the test.
func startLogged(t *testing.T, logPath string, ready func() bool, name string, args ...string) {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (tail):\n%s", filepath.Base(name), tail(b, 4000))
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited: %s", name, b)
		default:
		}
		if ready() {
			return
		}
	}
	t.Fatalf("%s did not come up", name)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// regClient is a distribution API client with token auth, as Docker's.
type regClient struct {
	base, user, pass string
	mu               sync.Mutex
	tokens           map[string]string
}

var scopeRe = regexp.MustCompile(`realm="([^"]+)",service="([^"]+)",scope="([^"]+)"`)

func (c *regClient) do(method, path string, body []byte, hdr ...string) (*http.Response, []byte, error) {
	u := path
	if !strings.HasPrefix(u, "http") {
		u = c.base + path
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		c.mu.Lock()
		tok := c.tokens[req.URL.Path]
		c.mu.Unlock()
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return res, b, err
		}
		m := scopeRe.FindStringSubmatch(res.Header.Get("WWW-Authenticate"))
		if m == nil {
			return res, b, fmt.Errorf("401 without a token challenge: %q", res.Header.Get("WWW-Authenticate"))
		}
		treq, _ := http.NewRequest("GET", m[1]+"?service="+url.QueryEscape(m[2])+"&scope="+url.QueryEscape(m[3]), nil)
		treq.SetBasicAuth(c.user, c.pass)
		tres, err := http.DefaultClient.Do(treq)
		if err != nil {
			return nil, nil, err
		}
		var tr struct{ Token string }
		err = json.NewDecoder(tres.Body).Decode(&tr)
		tres.Body.Close()
		if err != nil || tr.Token == "" {
			return nil, nil, fmt.Errorf("token: %d %v", tres.StatusCode, err)
		}
		c.mu.Lock()
		c.tokens[req.URL.Path] = tr.Token
		c.mu.Unlock()
	}
}

func (c *regClient) want(status int, method, path string, body []byte, hdr ...string) (*http.Response, []byte, error) {
	res, b, err := c.do(method, path, body, hdr...)
	if err == nil && res.StatusCode != status {
		err = fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res, b, err
}

// pushChunked uploads content in three PATCHes, each likely served by
// another replica, then finishes with PUT.
func (c *regClient) pushChunked(repo string, content []byte) (digest.Digest, error) {
	d := digest.FromBytes(content)
	res, _, err := c.want(202, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return "", err
	}
	loc := res.Header.Get("Location")
	step := len(content)/3 + 1
	for off := 0; off < len(content); off += step {
		end := min(off+step, len(content))
		res, _, err = c.want(202, "PATCH", loc, content[off:end], "Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		if err != nil {
			return "", err
		}
		loc = res.Header.Get("Location")
	}
	if _, _, err := c.want(201, "PUT", loc+"?digest="+d.String(), nil); err != nil {
		return "", err
	}
	return d, nil
}

// pushAndPull pushes an image of random layers and pulls it back whole.
func (c *regClient) pushAndPull(repo, tag string) error {
	var layers []string
	var blobs [][]byte
	for range 2 {
		b := make([]byte, 192<<10)
		rand.Read(b)
		d, err := c.pushChunked(repo, b)
		if err != nil {
			return err
		}
		blobs = append(blobs, b)
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, len(b)))
	}
	cfg := fmt.Appendf(nil, `{"os":"linux","tag":%q}`, repo+":"+tag)
	cd, err := c.pushChunked(repo, cfg)
	if err != nil {
		return err
	}
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		cd, len(cfg), strings.Join(layers, ","))
	if _, _, err := c.want(201, "PUT", "/v2/"+repo+"/manifests/"+tag, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); err != nil {
		return err
	}
	if _, got, err := c.want(200, "GET", "/v2/"+repo+"/manifests/"+tag, nil); err != nil || !bytes.Equal(got, m) {
		return fmt.Errorf("manifest pull: %v", err)
	}
	for _, b := range blobs {
		if _, got, err := c.want(200, "GET", "/v2/"+repo+"/blobs/"+digest.FromBytes(b).String(), nil); err != nil || !bytes.Equal(got, b) {
			return fmt.Errorf("blob pull: %v", err)
		}
	}
	return nil
}

// TestRegistryReplicas: three registry processes over one storage (a
// directory, as on one machine, or an S3 bucket, as on several) behind
// HAProxy round robin, with nothing configured but the storage: in both
// auth modes, concurrent chunked pushes and pulls see no error while
// collections are started on every replica, each upload's chunks are served
// by several replicas, every replica serves what the others stored, and the
// OCI conformance suite passes through the balancer (when
// OCI_CONFORMANCE_BIN points at it).
func TestRegistryReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ storage, mode string }{
		{"fs", "none"}, {"fs", "token"}, {"s3", "none"}, {"s3", "token"},
	} {
		t.Run(tc.storage+"-"+tc.mode, func(t *testing.T) {
			t.Parallel()
			hook := newEventHook(t)
			store := fmt.Sprintf(`"root":%q`, t.TempDir())
			if tc.storage == "s3" {
				store = s3Storage(t)
			}
			cfg := filepath.Join(t.TempDir(), "registry.json")
			if err := os.WriteFile(cfg, fmt.Appendf(nil, `{%s,"notifications":{"endpoints":[{"name":"hook","url":%q,"backoff":"10ms"}]}}`,
				store, hook.URL), 0o600); err != nil {
				t.Fatal(err)
			}
			storage := []string{"--config", cfg}
			user, admin := "", ""
			if tc.mode == "token" {
				addUsers(t, storage)
				user, admin = "alice", "root"
			}
			rs := startReplicas(t, 3, storage, tc.mode)
			storm(t, rs, user, admin)
			checkSpread(t, rs)
			checkEvents(t, hook)
			if tc.mode == "token" {
				checkTokensEverywhere(t, rs)
			}
			runConformance(t, rs.lb, admin)
		})
	}
}

func addUsers(t *testing.T, storage []string) {
	t.Helper()
	for _, u := range []string{"alice", "root"} {
		args := append([]string{"registry", "user", "add", u, "--password-stdin"}, storage...)
		if u == "root" {
			args = append(args, "--admin")
		}
		cmd := exec.Command(berthBin, args...)
		cmd.Stdin = strings.NewReader(u + "-pw\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add: %v: %s", err, out)
		}
	}
}

const stormClients, stormImages = 6, 18

// storm pushes and pulls images from concurrent clients through the
// balancer while another client starts collections on every replica
// directly; then every replica serves every image.
func storm(t *testing.T, rs *replicaSet, user, admin string) {
	const clients, images = stormClients, stormImages / stormClients
	repo := func(i int) string {
		if user == "" {
			return fmt.Sprintf("app%d", i%3)
		}
		return fmt.Sprintf("%s/app%d", user, i%3)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients*images+3)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient("http://"+rs.lb, user)
			for j := range images {
				if err := c.pushAndPull(repo(i), fmt.Sprintf("c%d-%d", i, j)); err != nil {
					errs <- err
				}
			}
		}()
	}
	stormDone := make(chan struct{})
	gcs := collectEverywhere(rs, admin, stormDone, errs)
	wg.Wait()
	close(stormDone)
	gcs.wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("collections during the storm: %d ran, %d refused (another replica held the lease)", gcs.byStatus[200], gcs.byStatus[409])
	for _, addr := range rs.addrs {
		c := newClient("http://"+addr, user)
		for i := range clients {
			for j := range images {
				if _, _, err := c.want(200, "GET", fmt.Sprintf("/v2/%s/manifests/c%d-%d", repo(i), i, j), nil); err != nil {
					t.Errorf("replica %s: %v", addr, err)
				}
			}
		}
	}
}

func newClient(base, user string) *regClient {
	return &regClient{base: base, user: user, pass: user + "-pw", tokens: map[string]string{}}
}

// collections counts the answers to the collections started on replicas.
type collections struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	byStatus map[int]int
}

// collectEverywhere starts collections on every replica at once, so their
// leases meet, again and again until stop; anything but 200 (collected) or
// 409 (another replica holds the lease) is an error.
func collectEverywhere(rs *replicaSet, admin string, stop chan struct{}, errs chan<- error) *collections {
	gcs := &collections{byStatus: map[int]int{}}
	for i, addr := range rs.addrs {
		gcs.wg.Add(1)
		go func() {
			defer gcs.wg.Done()
			c := newClient("http://"+addr, admin)
			for {
				res, b, err := c.do("POST", "/api/v1/gc", nil)
				if err != nil || (res.StatusCode != 200 && res.StatusCode != 409) {
					errs <- fmt.Errorf("gc on replica %d: %v %s", i, err, b)
					return
				}
				gcs.mu.Lock()
				gcs.byStatus[res.StatusCode]++
				gcs.mu.Unlock()
				select {
				case <-time.After(10 * time.Millisecond):
				case <-stop:
					return
				}
			}
		}()
	}
	return gcs
}

// checkSpread reads the replicas' access logs: every replica served
// requests, and the requests of one upload (POST, PATCHes, PUT) were served
// by more than one replica.
func checkSpread(t *testing.T, rs *replicaSet) {
	t.Helper()
	byUpload := map[string]map[int]bool{}
	for i, p := range rs.logs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range bytes.Lines(b) {
			var e struct{ Msg, Path, Method string }
			if json.Unmarshal(line, &e) != nil || e.Msg != "request" {
				continue
			}
			n++
			if _, id, ok := strings.Cut(e.Path, "/blobs/uploads/"); ok && id != "" {
				if byUpload[id] == nil {
					byUpload[id] = map[int]bool{}
				}
				byUpload[id][i] = true
			}
		}
		t.Logf("replica %d served %d requests", i, n)
		if n < 20 {
			t.Errorf("replica %d served %d requests: not balanced", i, n)
		}
	}
	spread := 0
	for _, rep := range byUpload {
		if len(rep) > 1 {
			spread++
		}
	}
	t.Logf("%d of %d chunked uploads were served by more than one replica", spread, len(byUpload))
	if spread == 0 {
		t.Error("no upload had its chunks served by different replicas")
	}
}

// checkTokensEverywhere: a token one replica issued is accepted by all.
func checkTokensEverywhere(t *testing.T, rs *replicaSet) {
	t.Helper()
	res, err := http.Get("http://" + rs.addrs[0] + "/v2/alice/app0/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	m := scopeRe.FindStringSubmatch(res.Header.Get("WWW-Authenticate"))
	if m == nil {
		t.Fatalf("no challenge: %q", res.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("GET", "http://"+rs.addrs[0]+"/token?service="+url.QueryEscape(m[2])+"&scope="+url.QueryEscape(m[3]), nil)
	req.SetBasicAuth("alice", "alice-pw")
	tres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ Token string }
	json.NewDecoder(tres.Body).Decode(&tr)
	tres.Body.Close()
	for _, addr := range rs.addrs {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v2/alice/app0/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+tr.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("token from replica 0 at %s: %d", addr, res.StatusCode)
		}
	}
}

// runConformance runs the OCI distribution-spec conformance suite through
// the balancer, as admin in token mode.
func runConformance(t *testing.T, lb, admin string) {
	t.Helper()
	bin := os.Getenv("OCI_CONFORMANCE_BIN")
	if home, err := os.UserHomeDir(); bin == "" && err == nil {
		// Where scripts/deps.sh test builds it.
		bin = filepath.Join(home, "go", "bin", "oci-conformance.test")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Log("OCI conformance suite not built (scripts/deps.sh test): conformance through the balancer skipped")
		return
	}
	results := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(), "OCI_REGISTRY="+lb, "OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2", "OCI_RESULTS_DIR="+results,
		"OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true")
	if admin != "" {
		cmd.Env = append(cmd.Env, "OCI_USERNAME="+admin, "OCI_PASSWORD="+admin+"-pw")
	}
	out, err := cmd.CombinedOutput()
	junit, rerr := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil || rerr != nil {
		t.Fatalf("conformance: %v %v\n%s", err, rerr, tail(out, 8000))
	}
	m := regexp.MustCompile(`tests="(\d+)".*?failures="(\d+)"`).FindSubmatch(junit)
	if m == nil || string(m[2]) != "0" {
		t.Fatalf("conformance failures through the balancer:\n%s", tail(out, 8000))
	}
	t.Logf("conformance through HAProxy over 3 replicas: %s tests, 0 failures", m[1])
}

// s3Storage starts versitygw (a real S3 server over a directory) on
// loopback and returns the registry config's storage field using its
// bucket: the deployment of replicas on several machines.
func s3Storage(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			bin = filepath.Join(home, "go", "bin", "versitygw")
		}
		if _, err := os.Stat(bin); err != nil {
			t.Skip("versitygw not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "berth"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startLogged(t, filepath.Join(t.TempDir(), "versitygw.log"), func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, bin, "--access", "replicaaccess", "--secret", "replicasecret", "--port", addr, "--quiet", "posix", dir)
	return fmt.Sprintf(`"storage":{"s3":{"bucket":"berth","prefix":"registry","endpoint":"http://%s","pathStyle":true,`+
		`"region":"us-east-1","accessKey":"replicaaccess","secretKey":"replicasecret"}}`, addr)
}

// eventHook is a webhook receiver counting the replicas' events by action
// and kind, and the replicas that sent them.
type eventHook struct {
	*httptest.Server
	mu      sync.Mutex
	counts  map[string]int // "push manifest", "push blob", "pull manifest", ...
	sources map[string]bool
}

func newEventHook(t *testing.T) *eventHook {
	h := &eventHook{counts: map[string]int{}, sources: map[string]bool{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Events []struct {
				Action string
				Target struct{ MediaType string }
				Source struct{ InstanceID string }
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Errorf("event envelope: %v", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, e := range env.Events {
			kind := "manifest"
			if e.Target.MediaType == "application/octet-stream" {
				kind = "blob"
			}
			h.counts[e.Action+" "+kind]++
			h.sources[e.Source.InstanceID] = true
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// checkEvents: every push and pull of the storm was notified, once, by the
// replica that served it (so by all three).
func checkEvents(t *testing.T, h *eventHook) {
	t.Helper()
	want := map[string]int{"push blob": stormImages * 3, "push manifest": stormImages, "pull manifest": stormImages * 4, "pull blob": stormImages * 2}
	var got map[string]int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		got = maps.Clone(h.counts)
		h.mu.Unlock()
		if maps.Equal(got, want) {
			break
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !maps.Equal(got, want) || len(h.sources) != 3 {
		t.Fatalf("events %v from %d replicas, want %v from 3", got, len(h.sources), want)
	}
	t.Logf("webhook: %v from %d replicas", got, len(h.sources))
}
