package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestContainerDockerParity runs the stock docker CLI and berth, each
// against its own freshly seeded in-memory daemon (ids and clocks are
// deterministic, so the two daemons are alike), and compares what they
// print and how they exit.
func TestContainerDockerParity(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; parity cannot be checked")
	}
	tests := containerParityCases()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			dockerHost, _ := startContainerDaemon(t, true)
			berthHost, _ := startContainerDaemon(t, true)
			cmd := exec.Command(docker, append([]string{"-H", dockerHost}, tt.args...)...)
			cmd.Env = []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir(), "TZ=UTC"}
			cmd.Stdin = strings.NewReader(tt.stdin)
			var dout, derr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &dout, &derr
			runErr := cmd.Run()
			dcode := cmd.ProcessState.ExitCode()
			if runErr != nil && dcode < 0 {
				t.Fatalf("docker: %v", runErr)
			}
			bout, berr, bcode := run(t, berthHost, strings.NewReader(tt.stdin), tt.args...)
			norm := func(s string) string { return strings.ReplaceAll(s, "docker", "berth") }
			if norm(dout.String()) != bout {
				t.Errorf("stdout differs\ndocker:\n%s\nberth:\n%s", dout.String(), bout)
			}
			if norm(derr.String()) != berr || dcode != bcode {
				t.Errorf("stderr/exit differ\ndocker (%d):\n%s\nberth (%d):\n%s", dcode, derr.String(), bcode, berr)
			}
		})
	}
}

// parityCase is one CLI invocation with its input.
type parityCase struct {
	args  []string
	stdin string
}

// containerParityCases are read-only commands, commands that change the
// seeded state, and failures of both kinds.
func containerParityCases() []parityCase {
	return []parityCase{
		{args: []string{"ps"}},
		{args: []string{"ps", "-a"}},
		{args: []string{"ps", "-a", "--no-trunc"}},
		{args: []string{"ps", "-a", "--format", "json"}},
		{args: []string{"ps", "-aq"}},
		{args: []string{"ps", "-s"}},
		{args: []string{"container", "ls", "-n", "1", "--filter", "status=created"}},
		{args: []string{"ps", "--filter", "status=sleeping"}},
		{args: []string{"inspect", "web"}},
		{args: []string{"inspect", "-f", "{{.State.Status}} {{.NetworkSettings.IPAddress}}", "web", "exited", "nope"}},
		{args: []string{"container", "inspect", "nope"}},
		{args: []string{"inspect", "-f", "{{.State}} {{.Config.Labels}} {{.HostConfig.RestartPolicy}}", "web"}},
		{args: []string{"container", "inspect", "-f", "{{json .Mounts}} {{.NetworkSettings.IPAddress}} {{.Nope}}", "web"}},
		{args: []string{"logs", "exited"}},
		{args: []string{"logs", "-t", "--tail", "1", "exited"}},
		{args: []string{"logs", "nope"}},
		{args: []string{"top", "web"}},
		{args: []string{"top", "exited"}},
		{args: []string{"port", "web"}},
		{args: []string{"port", "web", "80"}},
		{args: []string{"port", "web", "81"}},
		{args: []string{"diff", "web"}},
		{args: []string{"stats", "--no-stream", "web"}},
		{args: []string{"stats", "--no-stream", "--format", "json", "web"}},
		{args: []string{"run", "busybox", "echo", "hi"}},
		{args: []string{"run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"}},
		{args: []string{"run", "-t", "busybox", "echo", "tty"}},
		{args: []string{"run", "-i", "busybox", "cat"}, stdin: "through stdin\n"},
		{args: []string{"run", "busybox", "nope"}},
		{args: []string{"run", "busybox", "/no/such"}},
		{args: []string{"run", "--rm", "busybox", "/etc/passwd"}},
		{args: []string{"run", "--name", "web", "busybox", "true"}},
		{args: []string{"run", "-d", "busybox", "top"}},
		{args: []string{"run", "-d", "-a", "stdout", "busybox", "top"}},
		{args: []string{"run", "-p", "abc", "busybox"}},
		{args: []string{"run", "-m", "12q", "busybox"}},
		{args: []string{"run", "--add-host", "foo", "busybox"}},
		{args: []string{"run", "--pull", "sometimes", "busybox"}},
		{args: []string{"create", "--name", "c2", "-e", "A=1", "-l", "x=y", "busybox", "true"}},
		{args: []string{"create", "--network", "bridge", "--network-alias", "x", "busybox", "true"}},
		{args: []string{"create", "--ulimit", "nofile", "busybox"}},
		{args: []string{"create", "--mount", "type=bind", "busybox"}},
		{args: []string{"create", "--cpus", "x", "busybox"}},
		{args: []string{"create", "--dns", "1.2.3", "busybox"}},
		{args: []string{"start", "created", "nope", "nope2"}},
		{args: []string{"start", "-a", "exited"}},
		{args: []string{"start", "-a", "exited", "created"}},
		{args: []string{"stop", "web", "nope"}},
		{args: []string{"kill", "exited"}},
		{args: []string{"pause", "web", "web"}},
		{args: []string{"unpause", "web"}},
		{args: []string{"restart", "-t", "1", "exited"}},
		{args: []string{"rm", "web"}},
		{args: []string{"rm", "-f", "web", "created"}},
		{args: []string{"wait", "exited", "nope"}},
		{args: []string{"rename", "exited", "web"}},
		{args: []string{"exec", "web", "sh", "-c", "echo a; echo b >&2; exit 4"}},
		{args: []string{"exec", "web", "nope"}},
		{args: []string{"exec", "exited", "true"}},
		{args: []string{"exec", "-i", "web", "cat"}, stdin: "exec stdin\n"},
		{args: []string{"container", "prune", "-f"}},
		{args: []string{"container", "prune"}, stdin: "y\n"},
		{args: []string{"cp", "web:/etc/hostname", "-"}},
		{args: []string{"cp", "web:/nope", "-"}},
		{args: []string{"events", "--since", "1h", "--until", "1s", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"}},
	}
}
