package cli

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDockerCLIParity runs the stock docker CLI and berth against the same
// server and compares what they print. docker groups an image's tags
// through a Go map, so its row order within one image varies from run to
// run: tables are compared as sorted lines.
func TestDockerCLIParity(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; parity cannot be checked")
	}
	tests := []struct {
		args   []string
		sorted bool
		from   string // compare from this line on; "" compares everything
	}{
		{args: []string{"images"}, sorted: true},
		{args: []string{"images", "-a", "--digests", "--no-trunc"}, sorted: true},
		{args: []string{"images", "--format", "json"}, sorted: true},
		{args: []string{"images", "-q", "-f", "dangling=false"}, sorted: true},
		{args: []string{"history", "berth-multi"}},
		{args: []string{"history", "-H=false", "--no-trunc", "berth-multi"}},
		{args: []string{"history", "--format", "json", "berth-multi"}},
		{args: []string{"image", "inspect", "busybox"}},
		{args: []string{"inspect", "-f", "{{.Id}} {{.Os}}", "busybox"}},
		{args: []string{"inspect", "--type", "image", "-f", "{{json .RootFS}} {{.Nope}}", "busybox"}},
		{args: []string{"image", "inspect", "-f", "json", "busybox", "nope"}},
		{args: []string{"inspect", "-f", "{{.Nope}}", "busybox", "berth-multi"}},
		{args: []string{"inspect", "-f", "{{.Id}}", "nope", "busybox"}},
		{args: []string{"system", "df"}},
		{args: []string{"system", "df", "-v"}, sorted: true},
		{args: []string{"version"}, from: "Server:"},
		// docker lists runtimes in map order.
		{args: []string{"info"}, from: "Server:", sorted: true},
		{args: []string{"rmi", "nope"}},
		{args: []string{"history", "nope"}},
		{args: []string{"tag", "busybox"}},
		{args: []string{"images", "--badflag"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			host, _ := startDaemon(t)
			cmd := exec.Command(docker, append([]string{"-H", host}, tt.args...)...)
			cmd.Env = []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir(), "TZ=UTC"}
			var dout, derr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &dout, &derr
			runErr := cmd.Run()
			dcode := cmd.ProcessState.ExitCode()
			if runErr != nil && dcode < 0 {
				t.Fatalf("docker: %v", runErr)
			}
			bout, berr, bcode := run(t, host, nil, tt.args...)
			norm := func(s string) string {
				s = strings.ReplaceAll(s, "docker", "berth")
				if tt.from != "" {
					if i := strings.Index(s, tt.from); i >= 0 {
						s = s[i:]
					}
				}
				if tt.sorted {
					lines := strings.Split(s, "\n")
					for i, l := range lines {
						if rest, ok := strings.CutPrefix(l, " Runtimes: "); ok {
							names := strings.Fields(rest)
							slices.Sort(names)
							lines[i] = " Runtimes: " + strings.Join(names, " ")
						}
					}
					slices.Sort(lines)
					s = strings.Join(lines, "\n")
				}
				return s
			}
			if norm(dout.String()) != norm(bout) {
				t.Errorf("stdout differs\ndocker:\n%s\nberth:\n%s", dout.String(), bout)
			}
			if norm(derr.String()) != norm(berr) || dcode != bcode {
				t.Errorf("stderr/exit differ\ndocker (%d):\n%s\nberth (%d):\n%s", dcode, derr.String(), bcode, berr)
			}
		})
	}
}
