package integration

import (
	"strings"
	"testing"
)

// TestDockerCLIContainers drives the container lifecycle with the stock
// docker CLI against a berth daemon, and compares what both CLIs print
// where the output is deterministic.
func TestDockerCLIContainers(t *testing.T) {
	t.Parallel()
	dockerCLI(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")

	if r := d.docker("run", "--rm", "busybox", "echo", "hi"); r.Code != 0 || r.Stdout != "hi\n" {
		t.Fatalf("docker run: %s", r)
	}
	if r := d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Fatalf("docker run exit 3: %s", r)
	}
	if r := d.docker("run", "--rm", "busybox", "/no/such/binary"); r.Code != 127 {
		t.Fatalf("docker run missing binary: %s", r)
	}
	if r := d.dockerIn(strings.NewReader("piped\n"), "run", "-i", "--rm", "busybox", "cat"); r.Stdout != "piped\n" {
		t.Fatalf("docker run -i: %s", r)
	}
	id := strings.TrimSpace(d.docker("run", "-d", "--name", "dk", "busybox", "sh", "-c", "echo ready; sleep 1000").Stdout)
	if !idRE.MatchString(id) {
		t.Fatalf("docker run -d printed %q", id)
	}
	waitFor(t, func() bool { return d.docker("logs", "dk").Stdout == "ready\n" })
	if r := d.docker("exec", "dk", "sh", "-c", "echo in; exit 4"); r.Code != 4 || r.Stdout != "in\n" {
		t.Fatalf("docker exec: %s", r)
	}
	for _, args := range [][]string{
		{"ps", "--format", "{{.ID}} {{.Image}} {{.Command}} {{.Names}}"},
		{"ps", "-a", "-q"},
		{"inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Path}} {{.Args}}", "dk"},
		{"logs", "dk"},
		{"diff", "dk"},
		{"port", "dk"},
		{"kill", "-s", "USR1", "dk"},
		{"rm", "dk"},
		{"inspect", "nosuch"},
	} {
		b, k := d.berth(args...), d.docker(args...)
		if normalise(b.Stdout) != normalise(k.Stdout) || b.Code != k.Code || normalise(b.Stderr) != normalise(k.Stderr) {
			t.Errorf("%v differs:\nberth: %s\ndocker: %s", args, b, k)
		}
	}
	// State changes alternate between the two CLIs.
	for i, args := range [][]string{{"pause", "dk"}, {"unpause", "dk"}, {"pause", "dk"}, {"unpause", "dk"}} {
		run := d.berth
		if i%2 == 1 {
			run = d.docker
		}
		if r := run(args...); r.Code != 0 || r.Stdout != "dk\n" {
			t.Fatalf("%v: %s", args, r)
		}
	}
	if r := d.docker("stop", "-t", "1", "dk"); r.Code != 0 || r.Stdout != "dk\n" {
		t.Fatalf("docker stop: %s", r)
	}
	if r := d.docker("rm", "dk"); r.Code != 0 || r.Stdout != "dk\n" {
		t.Fatalf("docker rm: %s", r)
	}
	if r := d.docker("run", "--name", "dk2", "busybox", "sh", "-c", "echo x > /f"); r.Code != 0 {
		t.Fatalf("docker run: %s", r)
	}
	if r := d.docker("commit", "-m", "via docker", "dk2", "dk:committed"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "sha256:") {
		t.Fatalf("docker commit: %s", r)
	}
	if r := d.docker("run", "--rm", "dk:committed", "cat", "/f"); r.Stdout != "x\n" {
		t.Fatalf("run the commit: %s", r)
	}
}
