package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCgroup2Lifecycle runs a container's whole life on a daemon that sees
// a pure cgroup v2 host: info, the container's cgroup and cgroup
// namespace, exec, pause/unpause through the v2 freezer, stats, stop,
// kill with --rm, a start failure, and resource limits the host may lack.
func TestCgroup2Lifecycle(t *testing.T) {
	t.Parallel()
	v := startDaemonCgroup2(t)
	d, cg := v.daemon, v.cgroupRoot()
	d.importBusybox("busybox:latest")
	ctrl := readV2Controllers(t, cg)
	t.Logf("cgroup2 controllers in the daemon's view: %v", ctrl)
	checkCgroup2Info(t, d, ctrl)

	// The init counts, so the test sees whether it runs; sh as PID 1
	// ignores SIGTERM, so stop has to kill it.
	id := strings.TrimSpace(d.must("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
		"i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"))
	dir := filepath.Join(cg, "berth", id)
	pid := d.inspect("{{.State.Pid}}", "ticker")
	checkCgroup2Membership(t, d, pid, id, dir, "ticker")
	checkCgroup2Pause(t, d, pid, dir, "ticker")
	checkCgroup2Stats(t, d, ctrl)

	d.must("stop", "-t", "1", "ticker")
	if got := d.inspect("{{.State.Status}} {{.State.ExitCode}}", "ticker"); got != "exited 137" {
		t.Errorf("after stop: %q, want exited 137", got)
	}
	waitGone(t, dir, "stop")
	d.must("rm", "ticker")

	rmID := strings.TrimSpace(d.must("run", "-d", "--rm", "busybox", "sleep", "1000"))
	if _, err := os.Stat(filepath.Join(cg, "berth", rmID)); err != nil {
		t.Fatalf("the --rm container's cgroup: %v", err)
	}
	d.must("kill", rmID)
	waitGone(t, filepath.Join(d.DataRoot, "containers", rmID), "--rm after kill")
	waitGone(t, filepath.Join(cg, "berth", rmID), "--rm after kill")

	checkCgroup2StartFailure(t, d, cg)
	checkCgroup2Limits(t, d, cg, ctrl)
	checkCgroup2DockerCLI(t, d, ctrl)
	checkCgroup2Crun(t, d)
	if out := d.must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

func checkCgroup2Info(t *testing.T, d *daemon, ctrl v2Controllers) {
	t.Helper()
	if got := strings.TrimSpace(d.must("info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}")); got != "2 cgroupfs" {
		t.Errorf("info: cgroup version and driver %q, want \"2 cgroupfs\"", got)
	}
	info := d.berth("info")
	if !strings.Contains(info.Stdout, " Cgroup Version: 2\n") || !strings.Contains(info.Stdout, "  cgroupns\n") {
		t.Errorf("info does not show cgroup v2 and cgroupns:\n%s", info.Stdout)
	}
	warnings := map[string]string{"memory": "WARNING: No memory limit support", "cpu": "WARNING: No cpu shares support",
		"cpuset": "WARNING: No cpuset support", "io": "WARNING: No io.weight support"}
	for c, w := range warnings {
		if shown := strings.Contains(info.Stdout+info.Stderr, w); shown == ctrl[c] {
			t.Errorf("info with controller %s available=%v: warning %q shown=%v", c, ctrl[c], w, shown)
		}
	}
	if _, err := exec.LookPath("docker"); err == nil {
		if r := d.docker("info"); r.Code != 0 || !strings.Contains(r.Stdout, " Cgroup Version: 2\n") {
			t.Errorf("docker info: %s", r)
		}
	}
}

// checkCgroup2Membership checks that the init lives in <root>/berth/<id>,
// sees it as the root of a private cgroup namespace, and that exec joins it.
func checkCgroup2Membership(t *testing.T, d *daemon, pid, id, dir, name string) {
	t.Helper()
	if own := readTrim(t, "/proc/"+pid+"/cgroup"); !strings.Contains(own+"\n", "0::/berth/"+id+"\n") {
		t.Errorf("init's /proc/%s/cgroup has no 0::/berth/%s:\n%s", pid, id, own)
	}
	if procs := readTrim(t, filepath.Join(dir, "cgroup.procs")); !strings.Contains("\n"+procs+"\n", "\n"+pid+"\n") {
		t.Errorf("%s/cgroup.procs lacks the init %s: %q", dir, pid, procs)
	}
	out := d.must("exec", name, "sh", "-c", "cat /proc/self/cgroup; echo --; cat /sys/fs/cgroup/cgroup.procs")
	self, procs, _ := strings.Cut(out, "--\n")
	if !strings.Contains(self, "0::/\n") {
		t.Errorf("exec: /proc/self/cgroup is not the namespace root:\n%s", self)
	}
	if n := len(strings.Fields(procs)); n < 2 {
		t.Errorf("exec: the container's cgroup.procs has %d processes, want the init and the exec: %q", n, procs)
	}
	// top asks the runtime, which lists the cgroup's processes.
	if top := d.must("top", name); !strings.Contains(top, "\n"+"root ") || !strings.Contains(top, " "+pid+" ") {
		t.Errorf("top does not list the init %s:\n%s", pid, top)
	}
}

// checkCgroup2Pause checks the freezer: frozen in cgroup.events, no
// progress and no CPU time while paused, progress again after unpause.
func checkCgroup2Pause(t *testing.T, d *daemon, pid, dir, name string) {
	t.Helper()
	counter := "/proc/" + pid + "/root/tmp/n"
	d.must("pause", name)
	if f := cgroupEvent(t, dir, "frozen"); f != "1" {
		t.Fatalf("paused: cgroup.events frozen %s", f)
	}
	if got := d.inspect("{{.State.Status}} {{.State.Paused}} {{.State.Running}}", name); got != "paused true true" {
		t.Errorf("paused: inspect %q", got)
	}
	before, usage := readTrim(t, counter), readTrim(t, filepath.Join(dir, "cpu.stat"))
	time.Sleep(500 * time.Millisecond)
	if after := readTrim(t, counter); after != before {
		t.Errorf("a paused container ran: counter %s -> %s", before, after)
	}
	if now := readTrim(t, filepath.Join(dir, "cpu.stat")); strings.Fields(now)[1] != strings.Fields(usage)[1] {
		t.Errorf("a paused container used CPU: %q -> %q", strings.Fields(usage)[1], strings.Fields(now)[1])
	}
	d.must("unpause", name)
	if f := cgroupEvent(t, dir, "frozen"); f != "0" {
		t.Fatalf("unpaused: cgroup.events frozen %s", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for readTrim(t, counter) == before {
		if time.Now().After(deadline) {
			t.Fatal("the unpaused container does not run")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkCgroup2Stats reads stats through the API: CPU time comes from
// cpu.stat, which cgroup2 keeps without the cpu controller; memory only
// with the memory controller (else 0 / 0, as dockerd shows it); the
// process count from pids.current or, without pids, cgroup.threads.
func checkCgroup2Stats(t *testing.T, d *daemon, ctrl v2Controllers) {
	t.Helper()
	resp, err := d.get("/containers/ticker/stats?stream=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
		Memory struct {
			Usage uint64 `json:"usage"`
			Limit uint64 `json:"limit"`
		} `json:"memory_stats"`
		Pids struct {
			Current uint64 `json:"current"`
		} `json:"pids_stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.Total == 0 || st.Pids.Current == 0 {
		t.Errorf("stats: cpu total %d, pids %d; want both > 0", st.CPU.Usage.Total, st.Pids.Current)
	}
	if ctrl["memory"] != (st.Memory.Usage > 0) || ctrl["memory"] != (st.Memory.Limit > 0) {
		t.Errorf("stats with memory controller=%v: usage %d, limit %d", ctrl["memory"], st.Memory.Usage, st.Memory.Limit)
	}
	row := d.must("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "ticker")
	if f := strings.Fields(row); len(f) < 2 || f[0] != "ticker" || f[len(f)-1] == "0" {
		t.Errorf("stats --no-stream: %q", row)
	}
}

// checkCgroup2DockerCLI runs the stock docker CLI against the daemon on
// the v2 view: it prints the create warnings and the start failure as it
// does for dockerd.
func checkCgroup2DockerCLI(t *testing.T, d *daemon, ctrl v2Controllers) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		return
	}
	r := d.docker("run", "--rm", "--memory", "64m", "busybox", "cat", "/proc/self/cgroup")
	const w = "WARNING: Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.\n"
	if r.Code != 0 || !strings.Contains(r.Stdout, "0::/\n") || strings.Contains(r.Stderr, w) == ctrl["memory"] {
		t.Errorf("docker run --memory with memory controller=%v: %s", ctrl["memory"], r)
	}
	r = d.docker("run", "--rm", "busybox", "nope")
	if r.Code != 127 || !strings.HasPrefix(r.Stderr, "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: ") {
		t.Errorf("docker run of a missing command: %s", r)
	}
}

// checkCgroup2Crun runs crun, when installed, on the v2 view: it runs, or
// its refusal is a failed precondition that says why and points to runc
// (crun 1.8 knows runtime-spec only up to 1.1 and must raise
// RLIMIT_MEMLOCK for its eBPF device filter, which root here cannot).
func checkCgroup2Crun(t *testing.T, d *daemon) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/crun"); err != nil {
		return
	}
	r := d.berth("run", "--rm", "--runtime", "crun", "busybox", "echo", "crun ran")
	if r.Code == 0 && r.Stdout == "crun ran\n" {
		return
	}
	if r.Code != 125 || !strings.Contains(r.Stderr, "OCI runtime create failed: ") || !strings.Contains(r.Stderr, "use runc") {
		t.Errorf("crun on the v2 view: %s", r)
	}
	t.Logf("crun on the v2 view: %s", strings.TrimSpace(r.Stderr))
}

// checkCgroup2StartFailure checks dockerd's wording and exit code for a
// command that does not exist, and that the failed start left no cgroup.
func checkCgroup2StartFailure(t *testing.T, d *daemon, cg string) {
	t.Helper()
	const want = `failed to create task for container: failed to create shim task: OCI runtime create failed: ` +
		`runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`
	if r := d.berth("run", "--rm", "busybox", "nope"); r.Code != 127 || !strings.Contains(r.Stderr, "Error response from daemon: "+want+"\n") {
		t.Errorf("run of a missing command: %s", r)
	}
	id := strings.TrimSpace(d.must("create", "busybox", "nope"))
	if r := d.berth("start", id); r.Code != 1 || !strings.Contains(r.Stderr, want) {
		t.Errorf("start of a missing command: %s", r)
	}
	if got := d.inspect("{{.State.Status}} {{.State.ExitCode}}", id); got != "created 127" {
		t.Errorf("after the failed start: %q, want created 127", got)
	}
	if _, err := os.Stat(filepath.Join(cg, "berth", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left its cgroup: %v", err)
	}
	d.must("rm", id)
}

// checkCgroup2Limits asks for limits whose controllers the view may lack:
// absent ones are discarded with dockerd's warnings (or refused, --cpus),
// present ones are written to the container's cgroup.
func checkCgroup2Limits(t *testing.T, d *daemon, cg string, ctrl v2Controllers) {
	t.Helper()
	r := d.berth("create", "--name", "lim", "--memory", "64m", "--pids-limit", "50", "busybox", "sleep", "1000")
	if r.Code != 0 {
		t.Fatalf("create with limits: %s", r)
	}
	limits := []struct {
		ctrl, warning, inspect, file, enforced, discarded string
	}{
		{"memory", "WARNING: Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
			"{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", "memory.max", "67108864 134217728", "0 -1"},
		{"pids", "WARNING: Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
			"{{.HostConfig.PidsLimit}}", "pids.max", "50", "<nil>"},
	}
	d.must("start", "lim")
	id := d.inspect("{{.Id}}", "lim")
	for _, l := range limits {
		want := l.discarded
		if ctrl[l.ctrl] {
			want = l.enforced
		}
		if warned := strings.Contains(r.Stderr, l.warning+"\n"); warned == ctrl[l.ctrl] {
			t.Errorf("%s available=%v, warned=%v: %s", l.ctrl, ctrl[l.ctrl], warned, r.Stderr)
		}
		if got := d.inspect(l.inspect, "lim"); got != want {
			t.Errorf("%s: inspect %q, want %q", l.ctrl, got, want)
		}
		if ctrl[l.ctrl] {
			if got := readTrim(t, filepath.Join(cg, "berth", id, l.file)); got != strings.Fields(l.enforced)[0] {
				t.Errorf("%s = %q, want %s", l.file, got, strings.Fields(l.enforced)[0])
			}
		}
	}
	d.must("rm", "-f", "lim")
	cpus := d.berth("run", "--rm", "--cpus", "0.5", "busybox", "cat", "/sys/fs/cgroup/cpu.max")
	switch {
	case ctrl["cpu"] && (cpus.Code != 0 || cpus.Stdout != "50000 100000\n"):
		t.Errorf("--cpus 0.5 with the cpu controller: %s", cpus)
	case !ctrl["cpu"] && (cpus.Code != 125 || !strings.Contains(cpus.Stderr, "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")):
		t.Errorf("--cpus 0.5 without the cpu controller: %s", cpus)
	}
}

// TestCgroupOOMKilled runs a container past its memory limit on the host's
// own hierarchy and on the cgroup2 view: the kernel kills it, and inspect
// and events report it as dockerd does (exit 137, OOMKilled, an oom event
// before die).
func TestCgroupOOMKilled(t *testing.T) {
	t.Parallel()
	views := []struct {
		name  string
		start func(*testing.T) (*daemon, string)
	}{
		{"host", func(t *testing.T) (*daemon, string) { return startDaemon(t), "/sys/fs/cgroup" }},
		{"cgroup2", func(t *testing.T) (*daemon, string) { v := startDaemonCgroup2(t); return v.daemon, v.cgroupRoot() }},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			d, cg := v.start(t)
			if !hasMemoryController(cg) {
				t.Skipf("the %s view's cgroups have no memory controller, so no limit to run out of", v.name)
			}
			d.importBusybox("busybox:latest")
			since := time.Now().Add(-time.Second).Unix()
			// The second run finds the mark and exits 0 without the hog.
			id := strings.TrimSpace(d.must("run", "-d", "--memory", "8m", "busybox", "sh", "-c",
				`[ -e /ran ] && exit 0; touch /ran; x=$(head -c 40000000 /dev/zero | tr "\0" a); echo survived`))
			if code := strings.TrimSpace(d.must("wait", id)); code != "137" {
				t.Fatalf("wait: %s, want 137 (logs: %q)", code, d.must("logs", id))
			}
			if got := d.inspect("{{.State.OOMKilled}} {{.State.ExitCode}}", id); got != "true 137" {
				t.Errorf("inspect: %q, want true 137", got)
			}
			ev := d.must("events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Unix()+1),
				"--filter", "container="+id, "--format", "{{.Action}}")
			if oom, die := strings.Index(ev, "oom\n"), strings.Index(ev, "die\n"); oom < 0 || die < oom {
				t.Errorf("events: want oom before die:\n%s", ev)
			}
			d.must("start", id)
			d.must("wait", id)
			if got := d.inspect("{{.State.OOMKilled}} {{.State.ExitCode}}", id); got != "false 0" {
				t.Errorf("a run after the OOM kill: %q, want false 0", got)
			}
			d.must("rm", id)
		})
	}
}
