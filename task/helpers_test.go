package task

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMain doubles the test binary as `berth shim`, so the shim tests run
// the real shim as its own process, and as a short-lived daemon that starts
// a shim and exits.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(ShimMain(os.Args[2:]))
	}
	if len(os.Args) > 2 && os.Args[1] == "test-daemon" {
		os.Exit(testDaemon(os.Args[2]))
	}
	os.Exit(m.Run())
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates containers with runc")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static) for the test rootfs")
	}
}

var applets = []string{"sh", "echo", "cat", "sleep", "stty", "true", "false", "kill", "seq", "head", "yes"}

// bundleSpec tunes the spec of a test bundle.
type bundleSpec struct {
	args      []string
	tty       bool
	hostPidNS bool // leave out the pid namespace, so the init is not a pid-namespace init
	rlimit    *specs.POSIXRlimit
}

// newBundle writes an OCI bundle whose rootfs is busybox and returns its
// directory and the container id to use with it.
func newBundle(t testing.TB, bs bundleSpec) (dir, id string) {
	t.Helper()
	dir = t.TempDir()
	id = uniqueID(t)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(testSpec(t, id, bs), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroups(id) })
	return dir, id
}

func uniqueID(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-", "#", "").Replace(strings.ToLower(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return "berth-" + name + "-" + hex.EncodeToString(b[:])
}

func testSpec(t testing.TB, id string, bs bundleSpec) *specs.Spec {
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	rl := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: nofile.Max, Soft: min(nofile.Max, 1024)}
	if bs.rlimit != nil {
		rl = *bs.rlimit
	}
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
		"CAP_AUDIT_WRITE", "CAP_SETFCAP"}
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace}}
	if !bs.hostPidNS {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	return &specs.Spec{
		Version:  "1.0.2", // crun 1.8 rejects newer spec versions
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "berth-test",
		Process: &specs.Process{
			Terminal: bs.tty, Args: bs.args, Cwd: "/",
			Env:             []string{"PATH=/bin", "TERM=xterm", "HOME=/"},
			Rlimits:         []specs.POSIXRlimit{rl},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:    ns,
			CgroupsPath:   "/berth-test/" + id,
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// removeCgroups removes what a runtime left of the test container's
// cgroups (it removes them itself on delete; this covers failed tests).
func removeCgroups(id string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test/" + id)
	more, _ := filepath.Glob("/sys/fs/cgroup/berth-test/" + id)
	for _, d := range append(dirs, more...) {
		_ = unix.Rmdir(d)
	}
	sweepTestCgroups()
}

// sweepTestCgroups removes the parent cgroups of all test containers in
// every hierarchy; it fails harmlessly while other tests still use them.
func sweepTestCgroups() {
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test")
	for _, d := range append(parents, "/sys/fs/cgroup/berth-test") {
		_ = unix.Rmdir(d)
	}
}

// newRuntime returns a runtime with a root private to the test that
// force-deletes whatever the test left behind.
func newRuntime(t testing.TB, binary string) *Runtime {
	t.Helper()
	root := filepath.Join(t.TempDir(), "runtime")
	rt := NewRuntime(binary, root)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sts, _ := rt.List(ctx)
		for _, st := range sts {
			_ = rt.Delete(ctx, st.ID, true)
			removeCgroups(st.ID)
		}
		sweepTestCgroups()
	})
	return rt
}

// startShim starts a shim for a new busybox bundle and registers its
// cleanup: force delete, then kill the shim process if it is still there.
func startShim(t testing.TB, rt *Runtime, bs bundleSpec, mod func(*ShimOptions)) (*Shim, ShimOptions, error) {
	t.Helper()
	bundle, id := newBundle(t, bs)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts := ShimOptions{Binary: exe, ID: id, Bundle: bundle, StateDir: filepath.Join(t.TempDir(), "s"),
		Runtime: rt, Tty: bs.tty, Log: LogConfig{Path: filepath.Join(bundle, id+"-json.log")}}
	if mod != nil {
		mod(&opts)
	}
	s, err := StartShim(testCtx(t), opts)
	if err != nil {
		return nil, opts, err
	}
	t.Cleanup(func() {
		stopShim(s)
		checkShimLog(t, s)
	})
	return s, opts, nil
}

// checkShimLog fails the test when the shim, once gone, logged an error,
// a panic or (in -race builds) a data race.
func checkShimLog(t testing.TB, s *Shim) {
	deadline := time.Now().Add(5 * time.Second)
	for unix.Kill(s.Pid(), 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(s.StateDir(), shimLog))
	if err != nil {
		t.Errorf("shim log: %v", err)
		return
	}
	for _, bad := range []string{"DATA RACE", "panic:", "level=ERROR"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("shim log has %q:\n%s", bad, b)
		}
	}
}

func stopShim(s *Shim) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := s.Delete(ctx, true); err != nil && s.Pid() > 0 {
		_ = unix.Kill(s.Pid(), syscall.SIGKILL)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a polling test.
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLog decodes a json-file log.
func readLog(t testing.TB, path string) []logEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var e logEntry
		if err := dec.Decode(&e); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("log %s: %v", path, err)
		}
		out = append(out, e)
	}
}
