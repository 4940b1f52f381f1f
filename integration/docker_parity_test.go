package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"berth/testutil"
)

var padRE = regexp.MustCompile(` {2,}`)

var agoRE = regexp.MustCompile(`(Less than a second|About a minute|\d+ seconds?|About an hour|\d+ minutes?|\d+ hours?) ago`)

// normalise removes what legitimately differs between two runs of one
// command: relative times, and the program's own name.
func normalise(s string) string {
	s = agoRE.ReplaceAllString(s, "<ago>")
	// A relative time of another length shifts the table's columns.
	s = padRE.ReplaceAllString(s, "  ")
	s = strings.ReplaceAll(s, "berth", "docker")
	return s
}

// TestDockerCLIParity runs each image command with the stock docker CLI and
// with berth against one berth daemon: output and exit codes must agree.
func TestDockerCLIParity(t *testing.T) {
	t.Parallel()
	dockerCLI(t)
	d := startDaemon(t)
	id := d.importBusybox("busybox:latest")
	short := id[7:19]

	// docker import works through berth too.
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	r := d.dockerIn(f, "import", "-c", "LABEL via=docker", "-m", "from the docker CLI", "-", "via-docker:v1")
	f.Close()
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "sha256:") {
		t.Fatalf("docker import: %s", r)
	}

	commands := [][]string{
		{"images"},
		{"images", "-a"},
		{"images", "-q"},
		{"images", "--no-trunc"},
		{"images", "--digests"},
		{"images", "--filter", "dangling=true"},
		{"images", "--filter", "label=via=docker"},
		{"images", "--format", "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"},
		{"images", "--format", "table {{.Repository}}\t{{.ID}}"},
		{"image", "ls", "busybox"},
		{"history", "busybox"},
		{"history", "--no-trunc", "via-docker:v1"},
		{"history", "-H=false", "busybox"},
		{"history", "-q", "busybox"},
		{"image", "inspect", "busybox"},
		{"image", "inspect", "-f", "{{.Id}} {{.Config.Cmd}} {{.Comment}}", "via-docker:v1"},
		{"inspect", "--type", "image", short},
		{"image", "inspect", "nope"},
		{"rmi", "nope"},
		{"tag", "nope", "x:1"},
		{"tag", "busybox", "Bad/Name"},
		{"history", "nope"},
		{"system", "df"},
		{"info", "--format", "{{.Driver}} {{.Images}} {{.OSType}}"},
		{"version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"},
		{"image", "prune", "-f"},
	}
	for _, args := range commands {
		b := d.berth(args...)
		k := d.docker(args...)
		if normalise(b.Stdout) != normalise(k.Stdout) || b.Code != k.Code {
			t.Errorf("%v differs:\nberth: %s\ndocker: %s", args, b, k)
			continue
		}
		if normalise(b.Stderr) != normalise(k.Stderr) {
			t.Errorf("%v stderr differs:\nberth:  %q\ndocker: %q", args, b.Stderr, k.Stderr)
		}
	}

	// The same tag/untag sequence gives the same output from both CLIs.
	for _, cli := range []func(...string) result{d.berth, d.docker} {
		if r := cli("tag", "busybox", "par:one"); r.Code != 0 {
			t.Fatalf("tag: %s", r)
		}
		if r := cli("rmi", "par:one"); r.Stdout != "Untagged: par:one\n" {
			t.Errorf("rmi: %s", r)
		}
	}
	if r := d.docker("rmi", "via-docker:v1"); r.Code != 0 || !strings.Contains(r.Stdout, "Untagged: via-docker:v1\nDeleted: sha256:") {
		t.Fatalf("docker rmi of the last tag: %s", r)
	}
}
