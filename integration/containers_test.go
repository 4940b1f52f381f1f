package integration

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var idRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"run", "--rm", "busybox", "true"}, 0, "", ""},
		{[]string{"run", "--rm", "busybox", "echo", "hello"}, 0, "hello\n", ""},
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3, "", ""},
		{[]string{"run", "--rm", "busybox", "/no/such/binary"}, 127, "", "no such file or directory"},
		{[]string{"run", "--rm", "busybox", "nosuchcommand"}, 127, "", "executable file not found"},
		{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "", "permission denied"},
		{[]string{"run", "--rm", "--pull", "never", "127.0.0.1:9/none/such:v1"}, 125, "", "No such image"},
		{[]string{"run", "--rm", "--restart", "sometimes", "busybox", "true"}, 125, "", "invalid restart policy"},
		{[]string{"run", "--rm", "--memory", "1k", "busybox", "true"}, 125, "", "Minimum memory limit allowed is 6MB"},
	}
	for _, tc := range cases {
		r := d.berth(tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stdout, tc.stdout) || !strings.Contains(r.Stderr, tc.stderr) {
			t.Errorf("berth %v: want exit %d, stdout %q, stderr %q; got %s", tc.args, tc.code, tc.stdout, tc.stderr, r)
		}
	}
	// --rm left nothing behind, the failed ones included.
	if out := d.must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left after --rm: %q", out)
	}
}

func TestRunStdinAndTTYless(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	r := d.berthIn(strings.NewReader("hi there\n"), "run", "-i", "--rm", "busybox", "cat")
	if r.Code != 0 || r.Stdout != "hi there\n" {
		t.Fatalf("stdin piping: %s", r)
	}
	r = d.berth("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "--hostname", "h1", "busybox", "sh", "-c", `echo $FOO $(pwd) $(id -u) $(hostname)`)
	if r.Code != 0 || r.Stdout != "bar /tmp 65534 h1\n" {
		t.Fatalf("env/workdir/user/hostname: %s", r)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	id := strings.TrimSpace(d.must("run", "-d", "--name", "web", "-l", "tier=front", "busybox", "sleep", "1000"))
	if !idRE.MatchString(id) {
		t.Fatalf("run -d printed %q", id)
	}
	if got := d.must("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Hostname}}", "web"); got != "running true /web "+id[:12]+"\n" {
		t.Fatalf("inspect: %q", got)
	}
	r := d.berth("run", "-d", "--name", "web", "busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, `Conflict. The container name "/web" is already in use by container "`+id+`"`) {
		t.Fatalf("name clash: %s", r)
	}
	d.must("pause", "web")
	if got := d.must("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(got, "web Up ") || !strings.Contains(got, "(Paused)") {
		t.Fatalf("ps paused: %q", got)
	}
	if r := d.berth("pause", "web"); r.Code != 1 || !strings.Contains(r.Stderr, "is already paused") {
		t.Fatalf("second pause: %s", r)
	}
	d.must("unpause", "web")
	if r := d.berth("exec", "web", "sh", "-c", "echo in-exec; exit 5"); r.Code != 5 || r.Stdout != "in-exec\n" {
		t.Fatalf("exec: %s", r)
	}
	if got := d.must("top", "web"); !strings.Contains(got, "sleep 1000") {
		t.Fatalf("top: %q", got)
	}
	if got := d.must("stats", "--no-stream", "--format", "{{.Name}}", "web"); strings.TrimSpace(got) != "web" {
		t.Fatalf("stats: %q", got)
	}
	if got := d.must("ps", "-q", "--filter", "label=tier=front"); strings.TrimSpace(got) != id[:12] {
		t.Fatalf("ps --filter label: %q", got)
	}
	if r := d.berth("rm", "web"); r.Code != 1 || !strings.Contains(r.Stderr, "You cannot remove a running container "+id) {
		t.Fatalf("rm running: %s", r)
	}
	start := time.Now()
	d.must("stop", "-t", "1", "web")
	if el := time.Since(start); el < time.Second {
		t.Fatalf("stop took %v; sleep ignores SIGTERM as PID 1, so the timeout must pass", el)
	}
	if got := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"); got != "exited 137\n" {
		t.Fatalf("after stop: %q", got)
	}
	if r := d.berth("kill", "web"); r.Code != 1 || !strings.Contains(r.Stderr, "is not running") {
		t.Fatalf("kill stopped: %s", r)
	}
	d.must("rename", "web", "web2")
	d.must("rm", "web2")
	if r := d.berth("inspect", "web2"); r.Code != 1 {
		t.Fatalf("inspect after rm: %s", r)
	}
}

func TestLogsDiffCpExport(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "--name", "w1", "busybox", "sh", "-c", "for i in 1 2 3; do echo line $i; done; echo oops >&2; echo x > /hello.txt; rm /etc/group")
	if got := d.must("logs", "w1"); got != "line 1\nline 2\nline 3\n" {
		t.Fatalf("logs stdout: %q", got)
	}
	if r := d.berth("logs", "w1"); r.Stderr != "oops\n" {
		t.Fatalf("logs stderr: %q", r.Stderr)
	}
	if got := d.must("logs", "--tail", "1", "w1"); got != "" && got != "line 3\n" {
		t.Fatalf("logs --tail 1: %q", got)
	}
	if got := d.must("logs", "-t", "w1"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z line 1\n`).MatchString(got) {
		t.Fatalf("logs -t: %q", got)
	}
	diff := d.must("diff", "w1")
	for _, want := range []string{"A /hello.txt", "C /etc", "D /etc/group"} {
		if !strings.Contains(diff, want+"\n") {
			t.Fatalf("diff lacks %q:\n%s", want, diff)
		}
	}
	dir := t.TempDir()
	d.must("cp", "w1:/hello.txt", dir+"/out.txt")
	if b, _ := os.ReadFile(dir + "/out.txt"); string(b) != "x\n" {
		t.Fatalf("cp out: %q", b)
	}
	os.WriteFile(dir+"/in.txt", []byte("into the container\n"), 0o644)
	d.must("cp", dir+"/in.txt", "w1:/tmp/")
	d.must("start", "w1") // the container reruns its command; the copied file stays
	d.must("wait", "w1")
	if got := d.must("diff", "w1"); !strings.Contains(got, "A /tmp/in.txt") {
		t.Fatalf("cp in not in diff:\n%s", got)
	}
	d.must("export", "-o", dir+"/fs.tar", "w1")
	if st, err := os.Stat(dir + "/fs.tar"); err != nil || st.Size() < 1<<20 {
		t.Fatalf("export: %v", err)
	}
}

func TestLiveRestore(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "keeps", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
	d.must("run", "-d", "--name", "ends", "busybox", "sh", "-c", "sleep 1; exit 4")
	pid, _ := strconv.Atoi(strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "keeps")))
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container died with the daemon: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // "ends" exits while the daemon is down
	d.start()
	if got := d.must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "keeps"); got != "running "+strconv.Itoa(pid)+"\n" {
		t.Fatalf("after restart: %q", got)
	}
	if got := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ends"); got != "exited 4\n" {
		t.Fatalf("exit while down: %q", got)
	}
	if r := d.berth("exec", "keeps", "echo", "still here"); r.Code != 0 || r.Stdout != "still here\n" {
		t.Fatalf("exec after restart: %s", r)
	}
	before := strings.Count(d.must("logs", "keeps"), "tick")
	time.Sleep(600 * time.Millisecond)
	if after := strings.Count(d.must("logs", "keeps"), "tick"); after <= before {
		t.Fatalf("logs stopped flowing: %d -> %d", before, after)
	}
	d.must("stop", "-t", "1", "keeps")
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatal("container still running after stop")
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitFor(t, func() bool {
		return d.must("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky") == "2 exited\n"
	})
	d.must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	pid := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "always"))
	n, _ := strconv.Atoi(pid)
	syscall.Kill(n, syscall.SIGKILL)
	waitFor(t, func() bool {
		out := d.must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "always")
		return strings.HasPrefix(out, "running ") && out != "running "+pid+"\n"
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	// With --init the command is not PID 1: docker-init is.
	if got := d.must("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"); !regexp.MustCompile(`^\d+\n/sbin/docker-init -- sh`).MatchString(got) {
		t.Fatalf("--init: %q", got)
	}
	if r := d.berth("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Fatalf("exit code through init: %s", r)
	}
	// sleep ignores SIGTERM as PID 1, but not behind init: stop is quick.
	d.must("run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "1000")
	start := time.Now()
	d.must("stop", "sleeper")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("stop took %v: SIGTERM did not reach the command", el)
	}
	if got := d.must("inspect", "-f", "{{.State.ExitCode}}", "sleeper"); got != "143\n" {
		t.Fatalf("exit code after SIGTERM: %q", got)
	}
}

// TestRestartPolicyAcrossDaemonRestart: a container with --restart always
// that dies while the daemon is down is started again when it comes back;
// one the user stopped is not.
func TestRestartPolicyAcrossDaemonRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.must("stop", "-t", "0", "stopped")
	pid, _ := strconv.Atoi(strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "always")))
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL) // dies while the daemon is down
	time.Sleep(300 * time.Millisecond)
	d.start()
	waitFor(t, func() bool {
		out := d.must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "always")
		return strings.HasPrefix(out, "running ") && out != "running "+strconv.Itoa(pid)+"\n"
	})
	if got := d.must("inspect", "-f", "{{.State.Status}}", "stopped"); got != "exited\n" {
		t.Fatalf("a stopped unless-stopped container came back: %q", got)
	}
}
