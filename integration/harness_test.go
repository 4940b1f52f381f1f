// Package integration drives a real `berth daemon` (its own data root,
// exec root and socket per test) with the real `berth` CLI and, where it is
// installed, the stock docker CLI.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"berth/testutil"
)

var berthBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as `make build`: it is also --init's binary
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		return 1
	}
	return m.Run()
}

// daemon is one running `berth daemon`.
type daemon struct {
	t        *testing.T
	dir      string
	DataRoot string
	ExecRoot string
	Sock     string
	Host     string
	bridge   string
	bip      string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	done     chan error
}

// startDaemon runs a daemon on fresh roots; extra are more daemon flags.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	// Short paths: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bit-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"), Sock: filepath.Join(dir, "berth.sock")}
	d.Host = "unix://" + d.Sock
	t.Cleanup(func() {
		d.removeContainers()
		d.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
		unmountUnder(dir)
		d.removeNetwork()
		os.RemoveAll(dir)
	})
	d.start(extra...)
	return d
}

// daemonSeq numbers the daemons of this test run, so each gets its own
// bridge and subnet and parallel daemons never share network state.
var daemonSeq atomic.Int32

func (d *daemon) args(extra ...string) []string {
	if d.bridge == "" {
		n := int(daemonSeq.Add(1))
		d.bridge = fmt.Sprintf("bt%d-%d", os.Getpid()%10000, n)
		// A /24 in 172.18.0.0–172.31.255.0 picked by process and sequence,
		// so test processes running at once do not share subnets.
		k := (os.Getpid()*37 + n) % (14 * 256)
		d.bip = fmt.Sprintf("172.%d.%d.1/24", 18+k/256, k%256)
	}
	return append([]string{"daemon", "--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "-H", d.Host,
		"--config-file", filepath.Join(d.dir, "daemon.json"), "--bridge", d.bridge, "--bip", d.bip}, extra...)
}

func (d *daemon) start(extra ...string) {
	d.t.Helper()
	// Hermetic: an explicit, empty daemon.json unless the test wrote one,
	// so the host's /etc/berth/daemon.json never leaks in.
	cfg := filepath.Join(d.dir, "daemon.json")
	if _, err := os.Stat(cfg); err != nil {
		if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
			d.t.Fatal(err)
		}
	}
	d.log = &bytes.Buffer{}
	d.cmd = exec.Command(berthBin, d.args(extra...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := d.get("/_ping"); err == nil && resp.StatusCode == 200 {
			return
		}
		select {
		case err := <-d.done:
			d.cmd = nil
			d.t.Fatalf("daemon exited: %v\n%s", err, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.stop()
	d.t.Fatalf("daemon did not answer on %s\n%s", d.Sock, d.log.String())
}

// removeContainers force-removes every container of a running daemon:
// containers outlive their daemon by design (live restore), so a test must
// remove them itself, also when it failed.
func (d *daemon) removeContainers() {
	if d.cmd == nil {
		d.start()
	}
	ids := strings.Fields(d.berth("ps", "-aq", "--no-trunc").Stdout)
	if len(ids) > 0 {
		d.berth(append([]string{"rm", "-f"}, ids...)...)
	}
	// User networks' bridges and tables outlive the daemon as its default
	// bridge does; with no container left, prune takes them all.
	d.berth("network", "prune", "-f")
}

// removeNetwork deletes the daemon's bridge and nftables table, which a
// daemon keeps across restarts by design (as dockerd keeps docker0).
func (d *daemon) removeNetwork() {
	if d.bridge == "" {
		return
	}
	exec.Command("ip", "link", "del", d.bridge).Run()
	exec.Command("nft", "delete", "table", "inet", "berth-"+d.bridge).Run()
	exec.Command("nft", "delete", "table", "ip", "berth-"+d.bridge).Run()
}

// unmountUnder lazily unmounts whatever a failed test left mounted below
// dir, deepest first, so RemoveAll cannot reach into a mounted layer.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		syscall.Unmount(targets[i], syscall.MNT_DETACH)
	}
}

// stop sends SIGTERM and waits; a daemon that hangs is killed by PID.
func (d *daemon) stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.cmd = nil
		return fmt.Errorf("daemon ignored SIGTERM")
	}
}

func (d *daemon) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Sock)
		},
	}, Timeout: 30 * time.Second}
}

func (d *daemon) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://berth"+path, body)
	if err != nil {
		return nil, err
	}
	return d.httpClient().Do(req)
}

func (d *daemon) get(path string) (*http.Response, error) { return d.do("GET", path, nil) }

// result is what a CLI run printed and returned.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

func runCmd(t *testing.T, stdin io.Reader, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// berth runs the berth CLI against d.
func (d *daemon) berth(args ...string) result {
	d.t.Helper()
	return runCmd(d.t, nil, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "cfg")}, berthBin, append([]string{"-H", d.Host}, args...)...)
}

func (d *daemon) berthIn(stdin io.Reader, args ...string) result {
	d.t.Helper()
	return runCmd(d.t, stdin, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "cfg")}, berthBin, append([]string{"-H", d.Host}, args...)...)
}

// must runs the berth CLI and fails the test unless it exits 0.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	r := d.berth(args...)
	if r.Code != 0 {
		d.t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// dockerCLI returns the stock docker client, or skips when it is absent.
func dockerCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; the parity test needs it")
	}
	return p
}

// docker runs the stock docker CLI against d.
func (d *daemon) docker(args ...string) result {
	d.t.Helper()
	bin := dockerCLI(d.t)
	return runCmd(d.t, nil, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "dockercfg")}, bin, append([]string{"-H", d.Host}, args...)...)
}

func (d *daemon) dockerIn(stdin io.Reader, args ...string) result {
	d.t.Helper()
	bin := dockerCLI(d.t)
	return runCmd(d.t, stdin, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "dockercfg")}, bin, append([]string{"-H", d.Host}, args...)...)
}

// importBusybox imports the busybox fixture as ref with CMD ["sh"].
func (d *daemon) importBusybox(ref string) string {
	d.t.Helper()
	f, err := os.Open(testutil.BusyboxTar(d.t))
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	r := d.berthIn(f, "import", "-c", `CMD ["sh"]`, "-", ref)
	if r.Code != 0 {
		d.t.Fatalf("import: %s", r)
	}
	return strings.TrimSpace(r.Stdout)
}
