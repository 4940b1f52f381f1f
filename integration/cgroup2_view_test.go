package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/testutil"

	"golang.org/x/sys/unix"
)

// v2Daemon is a daemon that sees a pure cgroup v2 host. On a v2 host that
// is the host itself. On a v1 or hybrid host the daemon runs in a private
// mount namespace with cgroup2 mounted over /sys/fs/cgroup: runc, like
// berth, takes the version from that mount's filesystem type, so the
// daemon, its shims and runc see the unified hierarchy alone, with
// whatever controllers it offers here.
type v2Daemon struct {
	*daemon
	private bool // in a mount namespace of its own
}

// cgroupRoot is where the test reads the daemon's /sys/fs/cgroup.
func (v *v2Daemon) cgroupRoot() string {
	if !v.private {
		return "/sys/fs/cgroup"
	}
	return fmt.Sprintf("/proc/%d/root/sys/fs/cgroup", v.cmd.Process.Pid)
}

func startDaemonCgroup2(t *testing.T) *v2Daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &v2Daemon{daemon: startDaemon(t)}
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\tcgroup2\n") {
		t.Skip("the kernel has no cgroup2 filesystem, so no v2 view of this host can be made")
	}
	dir, err := os.MkdirTemp("", "bit-")
	if err != nil {
		t.Fatal(err)
	}
	v := &v2Daemon{daemon: &daemon{t: t, dir: dir, DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"),
		Sock: filepath.Join(dir, "berth.sock"), Host: "unix://" + filepath.Join(dir, "berth.sock")}, private: true}
	t.Cleanup(func() {
		if v.cmd == nil {
			v.launch() // containers outlive their daemon: one is needed to remove them
		}
		v.removeContainers()
		v.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", v.log.String())
		}
		// The daemon's mounts lived in its own namespace and went with it.
		unmountUnder(dir)
		v.removeNetwork()
		os.RemoveAll(dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v.launch()
	return v
}

// launch starts the daemon process on a new cgroup2 view.
func (v *v2Daemon) launch() {
	v.t.Helper()
	v.log = &bytes.Buffer{}
	v.cmd = cgroup2ViewCommand(berthBin, v.args()...)
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		v.cmd = nil
		v.t.Fatalf("start the daemon on a cgroup2 view: %v", err)
	}
	v.done = make(chan error, 1)
	go func(cmd *exec.Cmd) { v.done <- cmd.Wait() }(v.cmd)
	v.waitReady()
}

// restart stops the daemon and starts it again; on a private view the new
// one gets a new namespace, while the running containers' shims stay in
// the old one, as they outlive a daemon on any host.
func (v *v2Daemon) restart() {
	v.t.Helper()
	if err := v.stop(); err != nil {
		v.t.Fatal(err)
	}
	if v.private {
		v.launch()
		return
	}
	v.start()
}

// cgroup2ViewCommand runs bin in a new mount namespace, private from the
// host's, in which cgroup2 is mounted over /sys/fs/cgroup. The namespace
// is the child's alone: unsharing in the test process instead would, when
// the goroutine happens to run on the main thread, leave the whole test
// binary's /proc/self/mountinfo looking at the private view (Go wedges a
// locked main thread rather than ending it), and other tests would stop
// seeing the host's mounts. Go makes / private in the child before exec.
func cgroup2ViewCommand(bin string, args ...string) *exec.Cmd {
	script := `mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup && exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

func (d *daemon) waitReady() {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := d.get("/_ping"); err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			return
		}
		select {
		case err := <-d.done:
			d.cmd = nil
			d.t.Fatalf("daemon exited: %v\n%s", err, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.t.Fatalf("daemon did not answer on %s\n%s", d.Sock, d.log.String())
}

// v2Controllers is what the test expects of the daemon's view, read
// directly from the hierarchy rather than from berth.
type v2Controllers map[string]bool

func readV2Controllers(t *testing.T, cg string) v2Controllers {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cg, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	out := v2Controllers{}
	for _, c := range strings.Fields(string(b)) {
		out[c] = true
	}
	return out
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cgroupEvent returns a key of cgroup.events ("populated", "frozen").
func cgroupEvent(t *testing.T, dir, key string) string {
	t.Helper()
	for _, line := range strings.Split(readTrim(t, filepath.Join(dir, "cgroup.events")), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v
		}
	}
	t.Fatalf("%s/cgroup.events has no %q", dir, key)
	return ""
}

// waitGone waits until path no longer exists.
func waitGone(t *testing.T, path, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s still exists (%v)", what, path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasMemoryController reports whether the hierarchy at cg (v2, or the v1
// tree holding a memory/ mount) can limit memory.
func hasMemoryController(cg string) bool {
	if b, err := os.ReadFile(filepath.Join(cg, "cgroup.controllers")); err == nil {
		return strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ")
	}
	_, err := os.Stat(filepath.Join(cg, "memory", "memory.limit_in_bytes"))
	return err == nil
}

// TestCgroup2LiveRestore restarts the daemon of a cgroup2 view under a
// running container: the new daemon finds it in its cgroup, pauses it
// through the freezer, reads its stats, and stop removes its cgroup.
func TestCgroup2LiveRestore(t *testing.T) {
	t.Parallel()
	v := startDaemonCgroup2(t)
	v.importBusybox("busybox:latest")
	id := strings.TrimSpace(v.must("run", "-d", "--name", "keeps", "busybox", "sh", "-c",
		"i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"))
	pid := v.inspect("{{.State.Pid}}", "keeps")
	v.restart()
	dir := filepath.Join(v.cgroupRoot(), "berth", id)
	if got := v.inspect("{{.State.Status}} {{.State.Pid}}", "keeps"); got != "running "+pid {
		t.Fatalf("after the restart: %q, want running %s", got, pid)
	}
	if cgroupEvent(t, dir, "populated") != "1" {
		t.Fatalf("%s is not populated", dir)
	}
	checkCgroup2Membership(t, v.daemon, pid, id, dir, "keeps")
	checkCgroup2Pause(t, v.daemon, pid, dir, "keeps")
	if row := v.must("stats", "--no-stream", "--format", "{{.PIDs}}", "keeps"); strings.TrimSpace(row) == "0" {
		t.Errorf("stats after the restart: %q processes", row)
	}
	v.must("stop", "-t", "1", "keeps")
	waitGone(t, dir, "stop after the restart")
}
