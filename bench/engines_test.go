package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/testutil"
)

// busyboxImage is the fixture every engine imports from the same tar
// (testutil's busybox-static root filesystem), under a name of its own so
// that no user image is touched.
const busyboxImage = "berth-bench/busybox:latest"

// engine is one container engine driven through its CLI: berth against the
// benchmark's own daemon, docker against a running dockerd, podman on
// private storage roots.
type engine struct {
	name string
	argv []string // the binary and its global flags
	env  []string
	// tlsOff are the flags a pull or push to a plain-HTTP loopback
	// registry needs (docker and berth treat 127.0.0.0/8 as insecure).
	tlsOff []string
	// rmForce removes a running container at once: podman's rm -f
	// otherwise waits 10 s for a PID 1 that ignores SIGTERM.
	rmForce []string
}

// remove removes container name, running or not, without waiting.
func (e *engine) remove(name string) error {
	args := e.rmForce
	if args == nil {
		args = []string{"rm", "-f"}
	}
	_, err := e.run(nil, append(slices.Clone(args), name)...)
	return err
}

// command is one CLI invocation of e; ctx bounds it.
func (e *engine) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.argv[0], append(slices.Clone(e.argv[1:]), args...)...)
	cmd.Env = append(os.Environ(), e.env...)
	return cmd
}

// run runs e's CLI with stdin and returns stdout, or an error carrying
// stderr.
func (e *engine) run(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", e.name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// must runs e's CLI and fails the benchmark unless it succeeds.
func (e *engine) must(b *testing.B, args ...string) string {
	b.Helper()
	out, err := e.run(nil, args...)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// timed runs e's CLI and returns its wall time in seconds: the whole
// process, from exec to exit, as a user waits for it.
func (e *engine) timed(b *testing.B, args ...string) float64 {
	b.Helper()
	start := time.Now()
	if _, err := e.run(nil, args...); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}

// importBusybox imports the fixture under busyboxImage.
func (e *engine) importBusybox(b *testing.B) {
	b.Helper()
	f, err := os.Open(testutil.BusyboxTar(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := e.run(f, "import", "-c", `CMD ["sh"]`, "-", busyboxImage); err != nil {
		b.Fatal(err)
	}
}

// engines is berth and the peers present on this machine.
type engines struct {
	all     []*engine         // berth first
	skipped map[string]string // peer → why it is not measured
}

// startEngines starts berth's daemon and finds the peers; each engine has
// busyboxImage. Everything is removed when b ends.
func startEngines(b *testing.B) *engines {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("the engine benchmarks run daemons and containers and need root")
	}
	es := &engines{skipped: map[string]string{}}
	es.all = append(es.all, startBerth(b))
	if d, why := findDocker(b); d != nil {
		es.all = append(es.all, d)
	} else {
		es.skipped["docker"] = why
	}
	if p, why := findPodman(b); p != nil {
		es.all = append(es.all, p)
	} else {
		es.skipped["podman"] = why
	}
	for _, e := range es.all {
		e.importBusybox(b)
	}
	b.Cleanup(func() {
		for _, e := range es.all {
			e.run(nil, "rmi", busyboxImage)
		}
	})
	return es
}

// recordSkips records why each absent peer was not measured on workload.
func (es *engines) recordSkips(b *testing.B, workload string) {
	b.Helper()
	for _, name := range []string{"docker", "podman"} {
		if why, ok := es.skipped[name]; ok {
			record(b, Result{Workload: workload, System: name, Skipped: why})
		}
	}
}

// berthBinary is $BERTH_BIN (make bench sets it to bin/berth) or a fresh
// static build.
func berthBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("BERTH_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			b.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(b.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, "berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // also --init's binary
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build berth: %v\n%s", err, out)
	}
	return bin
}

// startBerth runs a daemon on private roots with its own bridge and /24,
// and removes it, its containers, bridge, nftables tables and mounts after.
func startBerth(b *testing.B) *engine {
	b.Helper()
	bin := berthBinary(b)
	dir, err := os.MkdirTemp("", "bbe-") // short: unix socket paths are limited
	if err != nil {
		b.Fatal(err)
	}
	pid := os.Getpid()
	bridge := fmt.Sprintf("bbe%d", pid%100000)
	bip := fmt.Sprintf("10.177.%d.1/24", pid%250)
	host := "unix://" + filepath.Join(dir, "b.sock")
	e := &engine{name: "berth", argv: []string{bin, "-H", host}, env: []string{"DOCKER_CONFIG=" + filepath.Join(dir, "cfg")}}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "daemon", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", host, "--config-file", cfg, "--bridge", bridge, "--bip", bip)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		if ids, err := e.run(nil, "ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			e.run(nil, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		exec.Command("ip", "link", "del", bridge).Run()
		exec.Command("nft", "delete", "table", "inet", "berth-"+bridge).Run()
		exec.Command("nft", "delete", "table", "ip", "berth-"+bridge).Run()
		removeTree(b, dir)
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, err := e.run(nil, "info", "--format", "{{.Driver}}"); err == nil {
			notePeer(b, "berth: a daemon of its own per benchmark on private roots (temp dir), storage driver "+strings.TrimSpace(out)+
				", its own bridge and /24, runc")
			return e
		}
		select {
		case <-done:
			b.Fatalf("berth daemon exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("berth daemon did not answer:\n%s", log.String())
		}
	}
}

// findDocker returns the docker CLI bound to a running dockerd
// ($DOCKER_HOST, else the default socket), or why there is none.
func findDocker(b *testing.B) (*engine, string) {
	b.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		return nil, "the docker CLI is not installed"
	}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	e := &engine{name: "docker", argv: []string{bin, "-H", host}, env: []string{"DOCKER_CONFIG=" + b.TempDir()}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.command(ctx, "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		return nil, fmt.Sprintf("no dockerd answers on %s (make bench starts a private one when dockerd is installed)", host)
	}
	b.Logf("docker: dockerd %s on %s", strings.TrimSpace(string(out)), host)
	return e, ""
}

// findPodman returns podman on private storage roots and a private
// containers.conf (rootful podman's default rlimits need CAP_SYS_RESOURCE,
// which containers here lack; runc, as berth and docker use), or why
// there is none.
func findPodman(b *testing.B) (*engine, string) {
	b.Helper()
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil, "podman is not installed"
	}
	dir, err := os.MkdirTemp("", "bbp-")
	if err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "containers.conf")
	const body = "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n" +
		"[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	e := &engine{name: "podman", argv: []string{bin, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp")}, env: []string{"CONTAINERS_CONF=" + conf, "REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json")},
		tlsOff: []string{"--tls-verify=false"}, rmForce: []string{"rm", "-f", "-t", "0"}}
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte("{}"), 0o600); err != nil {
		b.Fatal(err)
	}
	// No `system reset`: it would also remove the host's podman networks;
	// the private roots go with dir.
	b.Cleanup(func() {
		e.run(nil, "rm", "-af", "-t", "0")
		e.run(nil, "rmi", "-af")
		removeTree(b, dir)
	})
	out, err := e.run(nil, "info", "--format", "{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}")
	if err != nil {
		return nil, fmt.Sprintf("podman does not run: %v", err)
	}
	driver, runtime, _ := strings.Cut(strings.TrimSpace(out), " ")
	notePeer(b, fmt.Sprintf("podman: private storage roots and containers.conf per benchmark (storage driver %s, runtime %s, cgroupfs), default network (netavark)", driver, runtime))
	return e, ""
}

// notePeer appends how a system was set up to $BERTH_BENCH_PEERS, for the
// report (which lists each line once).
func notePeer(b *testing.B, line string) {
	b.Helper()
	path := os.Getenv("BERTH_BENCH_PEERS")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		b.Fatal(err)
	}
}

// removeTree lazily unmounts whatever is still mounted below dir, deepest
// first, then removes dir.
func removeTree(b *testing.B, dir string) {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		lines := strings.Split(string(mi), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Logf("remove %s: %v", dir, err)
	}
}

// record prints r and appends it to the results file.
func record(b *testing.B, r Result) {
	b.Helper()
	r.Bench, _, _ = strings.Cut(b.Name(), "/")
	fmt.Println(r.String())
	if err := Record(r); err != nil {
		b.Fatal(err)
	}
}

// alternate runs step for every engine once per round, the first engine
// of each round rotating, so that a drift of the machine (another
// engineer's build, the page cache) spreads evenly: the A/B alternation of
// PEERS.md. It returns each engine's runs.
func alternate(rounds, n int, step func(i int) float64) [][]float64 {
	runs := make([][]float64, n)
	for r := range rounds {
		for k := range n {
			i := (r + k) % n
			runs[i] = append(runs[i], step(i))
		}
	}
	return runs
}
