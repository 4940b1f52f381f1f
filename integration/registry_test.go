package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Every image name in these tests is fully qualified with a 127.0.0.1
// registry, so that no mistake can reach Docker Hub.

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs a server process and stops it (by PID) when the test
// ends; ready polls until it answers.
func startProcess(t testing.TB, ready func() bool, name string, args ...string) *exec.Cmd {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(name), log.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, log.String())
		default:
		}
		if ready() {
			return cmd
		}
	}
	t.Fatalf("%s did not come up: %s", name, log.String())
	return nil
}

func answers(addr string) func() bool {
	return func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
}

// startBerthRegistry runs `berth registry serve` from the built binary with
// auth mode none, basic or token; users are created first (name ->
// password, each owning its namespace).
func startBerthRegistry(t testing.TB, mode string, users map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, pw := range users {
		cmd := exec.Command(berthBin, "registry", "user", "add", name, "--root", root, "--password-stdin")
		cmd.Stdin = strings.NewReader(pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("registry user add: %v: %s", err, out)
		}
	}
	addr := freeAddr(t)
	startProcess(t, answers(addr), berthBin, "registry", "serve", "--root", root, "--addr", addr, "--auth", mode)
	return addr
}

const cncfRegistry = "/usr/bin/docker-registry"

// startCNCFRegistry runs the CNCF distribution registry, with htpasswd
// auth when users is not nil.
func startCNCFRegistry(t testing.TB, users map[string]string) string {
	t.Helper()
	if _, err := os.Stat(cncfRegistry); err != nil {
		t.Skipf("the CNCF registry is not installed (Debian package docker-registry): %v", err)
	}
	dir := t.TempDir()
	auth := ""
	if users != nil {
		var lines bytes.Buffer
		for name, pw := range users {
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&lines, "%s:%s\n", name, hash)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), lines.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-registry\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	addr := freeAddr(t)
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: berth-test\n%s",
		filepath.Join(dir, "data"), addr, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, answers(addr), cncfRegistry, "serve", filepath.Join(dir, "config.yml"))
	return addr
}

// lines splits output, dropping the trailing empty line.
func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

var digestLine = regexp.MustCompile(`^v1: digest: (sha256:[0-9a-f]{64}) size: \d+$`)

func TestRegistryBerthCLI(t *testing.T) {
	t.Parallel()
	reg := startBerthRegistry(t, "token", map[string]string{"alice": "alice-secret"})
	d := startDaemon(t)
	ref := reg + "/alice/busybox:v1"
	id := d.importBusybox(ref)
	layer := shortDiffID(t, d, id)

	if r := d.berth("push", ref); r.Code != 1 || !strings.HasPrefix(r.Stderr, "push access denied for "+reg+"/alice/busybox, log in to "+reg+" first: ") {
		t.Fatalf("push without login: %s", r)
	}
	r := d.berthIn(strings.NewReader("wrong\n"), "login", "-u", "alice", "--password-stdin", reg)
	if r.Code != 1 || r.Stderr != "Error response from daemon: login attempt to http://"+reg+"/v2/ failed with status: 401 Unauthorized\n" {
		t.Fatalf("wrong password: %s", r)
	}
	r = d.berthIn(strings.NewReader("alice-secret\n"), "login", "-u", "alice", "--password-stdin", reg)
	if r.Code != 0 || r.Stdout != "Login Succeeded\n" {
		t.Fatalf("login: %s", r)
	}
	// Token auth hands out a refresh token: stored instead of the password.
	cfg, _ := os.ReadFile(filepath.Join(d.dir, "cfg", "config.json"))
	if !strings.Contains(string(cfg), `"identitytoken"`) || strings.Contains(string(cfg), "YWxpY2U6YWxpY2Utc2VjcmV0") {
		t.Fatalf("config.json:\n%s", cfg)
	}

	out := lines(d.must("push", ref))
	if len(out) != 4 || out[0] != "The push refers to repository ["+reg+"/alice/busybox]" || out[1] != layer+": Preparing" ||
		out[2] != layer+": Pushed" || !digestLine.MatchString(out[3]) {
		t.Fatalf("push output:\n%s", strings.Join(out, "\n"))
	}
	dgst := digestLine.FindStringSubmatch(out[3])[1]
	if out := lines(d.must("push", ref)); out[2] != layer+": Layer already exists" {
		t.Fatalf("second push:\n%s", strings.Join(out, "\n"))
	}
	d.must("tag", ref, reg+"/alice/copy:v1")
	if out := lines(d.must("push", reg+"/alice/copy:v1")); out[2] != layer+": Mounted from alice/busybox" {
		t.Fatalf("push to a sibling repository:\n%s", strings.Join(out, "\n"))
	}

	d.must("rmi", ref, reg+"/alice/copy:v1")
	out = lines(d.must("pull", ref))
	blob := strings.TrimSuffix(out[1], ": Pulling fs layer")
	want := []string{"v1: Pulling from alice/busybox", blob + ": Pulling fs layer", blob + ": Verifying Checksum",
		blob + ": Download complete", blob + ": Pull complete", "Digest: " + dgst,
		"Status: Downloaded newer image for " + ref, ref}
	if !slices.Equal(out, want) {
		t.Fatalf("pull output:\n%s\nwant:\n%s", strings.Join(out, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.TrimSpace(d.must("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}")); got != ref+" "+dgst+" "+id[7:19] {
		t.Fatalf("images --digests: %q", got)
	}
	if out := lines(d.must("pull", ref)); out[len(out)-2] != "Status: Image is up to date for "+ref {
		t.Fatalf("second pull:\n%s", strings.Join(out, "\n"))
	}
	r = d.berth("pull", reg+"/alice/busybox:nosuch")
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "Error response from daemon: manifest for "+reg+"/alice/busybox:nosuch not found: manifest unknown: ") {
		t.Fatalf("unknown tag: %s", r)
	}
	d.must("push", reg+"/alice/busybox:v1")
	d.must("tag", ref, reg+"/alice/busybox:v2")
	d.must("push", "-a", reg+"/alice/busybox")
	d.must("rmi", reg+"/alice/busybox:v1", reg+"/alice/busybox:v2")
	out = lines(d.must("pull", "-a", reg+"/alice/busybox"))
	if out[len(out)-1] != reg+"/alice/busybox" || !slices.Contains(out, "v2: Pulling from alice/busybox") {
		t.Fatalf("pull -a:\n%s", strings.Join(out, "\n"))
	}

	if r := d.berth("logout", reg); r.Stdout != "Removing login credentials for "+reg+"\n" {
		t.Fatalf("logout: %s", r)
	}
	r = d.berth("pull", reg+"/alice/copy:v1")
	if r.Code != 1 || !strings.Contains(r.Stderr, "pull access denied for "+reg+"/alice/copy") {
		t.Fatalf("pull after logout: %s", r)
	}
}

// shortDiffID is the 12-hex id push shows for the image's only layer.
func shortDiffID(t *testing.T, d *daemon, id string) string {
	t.Helper()
	var ins []struct{ RootFS struct{ Layers []string } }
	if err := json.Unmarshal([]byte(d.must("image", "inspect", id)), &ins); err != nil || len(ins) != 1 || len(ins[0].RootFS.Layers) != 1 {
		t.Fatalf("inspect: %v %+v", err, ins)
	}
	return ins[0].RootFS.Layers[0][7:19]
}

func TestRegistryDockerCLI(t *testing.T) {
	t.Parallel()
	dockerCLI(t)
	d := startDaemon(t)
	reg := startBerthRegistry(t, "token", map[string]string{"bob": "bob-secret"})
	cncf := startCNCFRegistry(t, map[string]string{"carol": "carol-secret"})
	ref := reg + "/bob/busybox:v1"
	d.importBusybox(ref)

	if r := d.dockerIn(strings.NewReader("bob-secret\n"), "login", "-u", "bob", "--password-stdin", reg); r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("docker login: %s", r)
	}
	if r := d.docker("push", ref); r.Code != 0 || !strings.Contains(r.Stdout, ": Pushed") {
		t.Fatalf("docker push: %s", r)
	}
	d.must("rmi", ref)
	if r := d.docker("pull", ref); r.Code != 0 || !strings.Contains(r.Stdout, "Status: Downloaded newer image for "+ref) {
		t.Fatalf("docker pull: %s", r)
	}

	// The CNCF registry with htpasswd over plain HTTP, as in PEERS.md.
	r := d.dockerIn(strings.NewReader("nope\n"), "login", "-u", "carol", "--password-stdin", cncf)
	if r.Code != 1 || !strings.Contains(r.Stderr, "Error response from daemon: login attempt to http://"+cncf+"/v2/ failed with status: 401 Unauthorized") {
		t.Fatalf("docker login with a wrong password: %s", r)
	}
	if r := d.dockerIn(strings.NewReader("carol-secret\n"), "login", "-u", "carol", "--password-stdin", cncf); r.Code != 0 {
		t.Fatalf("docker login: %s", r)
	}
	cref := cncf + "/berth-it/busybox:v1"
	d.must("tag", ref, cref)
	if r := d.docker("push", cref); r.Code != 0 || !strings.Contains(r.Stdout, "v1: digest: sha256:") {
		t.Fatalf("docker push to the CNCF registry: %s", r)
	}
	d.must("rmi", cref, ref)
	if r := d.docker("pull", cref); r.Code != 0 || !strings.Contains(r.Stdout, "Status: Downloaded newer image for "+cref) {
		t.Fatalf("docker pull from the CNCF registry: %s", r)
	}
	if r := d.docker("logout", cncf); r.Code != 0 {
		t.Fatalf("docker logout: %s", r)
	}
	d.must("rmi", cref)
	if r := d.docker("pull", cref); r.Code != 1 || !strings.Contains(r.Stderr, "pull access denied") {
		t.Fatalf("docker pull after logout: %s", r)
	}
}

// TestPullProgressOnTerminal runs pull on a pseudo-terminal (script(1)):
// the stock docker CLI and berth redraw each layer's line in place.
func TestPullProgressOnTerminal(t *testing.T) {
	t.Parallel()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed (package bsdutils)")
	}
	reg := startCNCFRegistry(t, nil)
	d := startDaemon(t)
	pushRandomImage(t, d, reg, "berth-it/tty", 31, 4<<20)
	clis := [][]string{{berthBin, "-H", d.Host}}
	if docker, err := exec.LookPath("docker"); err == nil {
		clis = append(clis, []string{docker, "-H", d.Host})
	}
	for _, cli := range clis {
		ref := reg + "/berth-it/tty:v1"
		cmd := strings.Join(append(cli, "pull", ref), " ")
		r := runCmd(t, nil, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "cfg"), "COLUMNS=120"}, scriptBin, "-q", "-e", "-c", cmd, "/dev/null")
		if r.Code != 0 || !strings.Contains(r.Stdout, "\x1b[2K\r") || !strings.Contains(r.Stdout, ": Pull complete") ||
			!strings.Contains(r.Stdout, "Status: Downloaded newer image for "+ref) {
			t.Errorf("%s on a terminal: %q", filepath.Base(cli[0]), r.Stdout)
		}
		d.must("rmi", ref)
	}
}
