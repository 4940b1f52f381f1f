package integration

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildErrors checks that bad input fails with a precise message, the
// exit status of a failed RUN, and nothing half-made left behind.
func TestBuildErrors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	closed := freeAddr(t) // nothing listens there: a registry that is down
	reg := startBerthRegistry(t, "none", nil)
	tests := []struct {
		name       string
		dockerfile string
		args       []string
		code       int
		stderr     string
		stdout     string
	}{
		{name: "syntax", dockerfile: "FROM busybox\n\nRUN echo ok\nFROB x\n", code: 1,
			stderr: "Dockerfile:4: unknown instruction: FROB"},
		{name: "syntax in -f", dockerfile: "FROM busybox\nCOPY\n", args: []string{"-f", "Dockerfile.dev"}, code: 1,
			stderr: "Dockerfile.dev:2: COPY requires at least two arguments"},
		{name: "misspelt", dockerfile: "FROM busybox\nCOPPY a b\n", code: 1, stderr: "unknown instruction: COPPY (did you mean COPY?)"},
		{name: "missing source", dockerfile: "FROM busybox\nCOPY nothere /x\n", code: 1,
			stderr: "COPY failed: file not found in build context or excluded by .dockerignore: stat nothere: file does not exist"},
		{name: "failing run", dockerfile: "FROM busybox\nRUN echo to stdout; echo to stderr >&2; exit 3\n", code: 3,
			stderr: "The command '/bin/sh -c echo to stdout; echo to stderr >&2; exit 3' returned a non-zero code: 3",
			stdout: "to stdout\n"},
		{name: "failing run stderr", dockerfile: "FROM busybox\nRUN echo to stderr >&2; exit 3\n", code: 3, stdout: "to stderr\n"},
		{name: "failing exec form", dockerfile: "FROM busybox\nRUN [\"false\"]\n", code: 1,
			stderr: "The command 'false' returned a non-zero code: 1"},
		{name: "unknown stage index", dockerfile: "FROM busybox\nCOPY --from=4 /x /x\n", code: 1,
			stderr: "invalid from flag value 4: index out of bounds"},
		{name: "unknown base image", dockerfile: "FROM " + closed + "/nope/base:v1\n", code: 1,
			stderr: closed + "/nope/base:v1"},
		{name: "unknown --from image", dockerfile: "FROM busybox\nCOPY --from=" + closed + "/nosuch /x /x\n", code: 1,
			stderr: "invalid from flag value " + closed + "/nosuch: manifest " + closed + "/nosuch:latest: "},
		{name: "base image not in the registry", dockerfile: "FROM " + reg + "/nope/base:v1\n", code: 1,
			stderr: "manifest for " + reg + "/nope/base:v1 not found: manifest unknown"},
		{name: "unknown target", dockerfile: "FROM busybox AS one\n", args: []string{"--target", "two"}, code: 1,
			stderr: "failed to reach build target two in Dockerfile"},
		{name: "bad tag", dockerfile: "FROM busybox\n", args: []string{"-t", "Bad:Tag"}, code: 125,
			stderr: "invalid reference format"},
		{name: "unset required variable", dockerfile: "FROM busybox\nENV X=\"${NEEDED:?must be given}\"\n", code: 1,
			stderr: "failed to process \"\\\"${NEEDED:?must be given}\\\"\": NEEDED: must be given"},
		{name: "empty", dockerfile: "# nothing\n", code: 1, stderr: "Dockerfile:1: file with no instructions"},
		{name: "secret mounts", dockerfile: "FROM busybox\nRUN --mount=type=secret,id=x true\n", code: 1,
			stderr: "--mount=type=secret needs BuildKit's session"},
	}
	// Each case through the berth CLI and the stock docker CLI: the
	// messages are the daemon's, the docker CLI prints them as they are.
	clients := []struct {
		name  string
		build func(args ...string) result
	}{
		{"berth", func(args ...string) result { return d.berth(append([]string{"build"}, args...)...) }},
		{"docker", func(args ...string) result { return d.dockerBuild("", args...) }},
	}
	failedRuns := 0
	for _, c := range clients {
		if _, err := exec.LookPath(c.name); c.name == "docker" && err != nil {
			continue
		}
		failedRuns += 3
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				name := "Dockerfile"
				if len(tt.args) > 1 && tt.args[0] == "-f" {
					name = tt.args[1]
				}
				dir := writeContext(t, map[string]string{name: tt.dockerfile})
				args := append(slices.Clone(tt.args), dir)
				if len(tt.args) > 1 && tt.args[0] == "-f" {
					args = []string{"-f", filepath.Join(dir, name), dir}
				}
				r := c.build(args...)
				if r.Code != tt.code || !strings.Contains(r.Stderr, tt.stderr) || !strings.Contains(r.Stdout, tt.stdout) {
					t.Fatalf("got %s\nwant exit %d, stderr with %q, stdout with %q", r, tt.code, tt.stderr, tt.stdout)
				}
			})
		}
	}
	// Nothing of the failures is left but Docker's failed RUN containers
	// (kept for inspection without --force-rm).
	r := d.berthIn(strings.NewReader("FROM busybox\nRUN exit 5\n"), "build", "--force-rm", "-")
	if r.Code != 5 {
		t.Fatalf("--force-rm build: %s", r)
	}
	ps := d.must("ps", "-a", "--format", "{{.Command}}")
	if got := strings.Count(ps, "\n"); got != failedRuns || strings.Contains(ps, "exit 5") {
		t.Errorf("containers after the failures (want the %d failed RUNs without --force-rm):\n%s", failedRuns, ps)
	}
	d.assertNoBuildLeftovers()
}

// assertNoBuildLeftovers checks that no build directory, view or mount of
// a build remains, and no container of one: no runtime state, no shim
// directory or process.
func (d *daemon) assertNoBuildLeftovers() {
	d.t.Helper()
	for _, dir := range []string{filepath.Join(d.DataRoot, "build", "tmp"), filepath.Join(d.ExecRoot, "shims")} {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			d.t.Errorf("%s left: %v", dir, entries)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], d.dir) && !strings.Contains(f[4], "/containers/") && !strings.Contains(f[4], "/netns/") {
			d.t.Errorf("mount left: %s", f[4])
		}
	}
	runtimes, _ := os.ReadDir(filepath.Join(d.ExecRoot, "runtime"))
	for _, rt := range runtimes {
		root := filepath.Join(d.ExecRoot, "runtime", rt.Name())
		if states, _ := os.ReadDir(root); len(states) > 0 {
			d.t.Errorf("%s state left in %s: %v", rt.Name(), root, states)
		}
		if bin, err := exec.LookPath(rt.Name()); err == nil {
			if out, err := exec.Command(bin, "--root", root, "list", "-q").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
				d.t.Errorf("%s list: %v: %s", rt.Name(), err, out)
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if cmd, _ := os.ReadFile(p); bytes.Contains(cmd, []byte("shim")) && bytes.Contains(cmd, []byte(d.dir)) {
			d.t.Errorf("shim process left: %s %q", p, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
		}
	}
}

// snapshotDirs are the names of d's snapshots.
func (d *daemon) snapshotDirs() []string {
	d.t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.DataRoot, "snapshots", "overlay2", "snapshots"))
	if err != nil {
		d.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestBuildCancel interrupts a build (ctrl-c of the berth CLI and of the
// stock docker CLI: the client closes the connection) while a RUN runs:
// its container, shim, runtime state, mounts, snapshot and scratch files
// go, and no image is made for it.
func TestBuildCancel(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	clients := []struct {
		name string
		argv []string
		env  []string
	}{
		{"berth", []string{berthBin, "-H", d.Host, "build"}, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "cfg")}},
		{"docker", []string{"docker", "-H", d.Host, "build"}, []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "dockercfg"), "DOCKER_BUILDKIT=0"}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				t.Skipf("%s is not installed", c.argv[0])
			}
			dir := writeContext(t, map[string]string{
				"Dockerfile": "FROM busybox\nCOPY a /a\nRUN --mount=type=cache,target=/c echo started; sleep 120\nRUN echo never\n",
				"a":          c.name + "\n", // a COPY step of its own for each client
			})
			images, snapshots := d.must("images", "-a", "-q"), d.snapshotDirs()
			interruptBuild(t, append(c.argv, dir), c.env)
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) && d.must("ps", "-aq") != "" {
				time.Sleep(100 * time.Millisecond)
			}
			if ps := d.must("ps", "-a"); strings.Count(ps, "\n") != 1 {
				t.Fatalf("the cancelled build left containers:\n%s", ps)
			}
			// The COPY step finished before the interruption and stays as
			// cache, with its layer's snapshot: nothing else is new.
			if n := strings.Count(d.must("images", "-a", "-q"), "\n") - strings.Count(images, "\n"); n != 1 {
				t.Errorf("%d new images, want only the COPY step's", n)
			}
			if after := d.snapshotDirs(); len(after) != len(snapshots)+1 {
				t.Errorf("snapshots before %v after %v: want only the COPY layer's more", snapshots, after)
			}
			d.assertNoBuildLeftovers()
		})
	}
}

// interruptBuild starts a build, waits for its RUN to print "started"
// and sends the CLI SIGINT, as ctrl-c does.
func interruptBuild(t *testing.T, argv, env []string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "started" {
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("the interrupted build succeeded: %s", stderr.String())
	}
}

// TestBuildStageFailure fails one stage while another, independent one
// runs a long RUN: the build stops at once with the failure's status, the
// other RUN's container goes with everything else of it, and only the
// failed RUN's container is kept, as Docker keeps it.
func TestBuildStageFailure(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	// Stage b sleeps past runCmd's limit: a build that waited for it fails.
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS a\nRUN sleep 1; exit 7\n" +
		"FROM busybox AS b\nRUN echo started; sleep 600\n" +
		"FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"})
	r := d.berth("build", dir)
	if r.Code != 7 || !strings.Contains(r.Stderr, "The command '/bin/sh -c sleep 1; exit 7' returned a non-zero code: 7") {
		t.Fatalf("build: %s", r)
	}
	if ps := d.must("ps", "-a", "--no-trunc", "--format", "{{.Command}} {{.Status}}"); strings.Count(ps, "\n") != 1 || !strings.Contains(ps, "exit 7") {
		t.Errorf("containers after the build, want the failed RUN's alone:\n%s", ps)
	}
	d.assertNoBuildLeftovers()
}
