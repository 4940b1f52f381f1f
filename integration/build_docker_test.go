package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerBuild runs the stock docker CLI's classic builder against d.
func (d *daemon) dockerBuild(stdin string, args ...string) result {
	d.t.Helper()
	bin := dockerCLI(d.t)
	var in *strings.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	env := []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "dockercfg"), "DOCKER_BUILDKIT=0"}
	if in == nil {
		return runCmd(d.t, nil, env, bin, append([]string{"-H", d.Host, "build"}, args...)...)
	}
	return runCmd(d.t, in, env, bin, append([]string{"-H", d.Host, "build"}, args...)...)
}

var reClassicLine = regexp.MustCompile(`^(Sending build context to Docker daemon  [0-9.]+k?B|Step \d+/\d+ : .*| ---> [0-9a-f]{12}| ---> Running in [0-9a-f]{12}| ---> Using cache|Removing intermediate container [0-9a-f]{12}|Successfully built [0-9a-f]{12}|Successfully tagged .*|# Executing \d+ build triggers?|)$`)

// TestBuildDockerCLI drives the builder with the stock docker CLI (28.x,
// no buildx: its classic builder, as DOCKER_BUILDKIT=0 asks): the output
// lines, the cache, -q, --iidfile, build args, --target, a failing RUN's
// exit status, Dockerfile on stdin and `builder prune`.
func TestBuildDockerCLI(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	dockerCLI(t)
	d.importBusybox("busybox:latest")
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "remote bytes\n") }))
	defer remote.Close()
	files := map[string]string{
		"Dockerfile":     strings.ReplaceAll(instructionsDockerfile, "{{URL}}", remote.URL),
		"files/a.txt":    "file a\n",
		"files/b.txt":    "file b\n",
		"files/tool.sh":  "#!/bin/sh\necho tool\n",
		"archive.tar.gz": string(gzipTar(t, map[string]string{"pkg/readme": "from the archive\n"})),
		".dockerignore":  "*.md\n",
		"notes.md":       "ignored\n",
	}
	dir := writeContext(t, files)
	r := d.dockerBuild("", "--build-arg", "TAG=latest", "-t", "docker:built", dir)
	if r.Code != 0 {
		t.Fatalf("docker build: %s", r)
	}
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(l, "Step ") || strings.HasPrefix(l, " --->") || strings.HasPrefix(l, "Removing") || strings.HasPrefix(l, "Successfully") {
			if !reClassicLine.MatchString(l) {
				t.Errorf("line not in the classic builder's format: %q", l)
			}
		}
	}
	if !strings.Contains(r.Stdout, "Successfully tagged docker:built\n") || strings.Count(r.Stdout, " ---> Running in ") != 6 {
		t.Fatalf("docker build output:\n%s", r.Stdout)
	}
	// The berth CLI's context of the same directory hits every cache entry
	// the docker CLI's made: both send the same files.
	again := d.must("build", "--build-arg", "TAG=latest", "-t", "berth:built", dir)
	if strings.Contains(again, "Running in") {
		t.Errorf("berth rebuilt what docker built:\n%s", again)
	}
	if a, b := d.must("image", "inspect", "-f", "{{.Id}}", "docker:built"), d.must("image", "inspect", "-f", "{{.Id}}", "berth:built"); a != b {
		t.Errorf("docker built %s, berth %s", a, b)
	}
	if out := d.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "docker:built"); !strings.Contains(out.Stdout, "#(nop)  CMD [\"cat greeting.txt\"]") {
		t.Errorf("docker history:\n%s", out)
	}
	if got := d.docker("run", "--rm", "docker:built"); got.Stdout != "hello from /srv/app\n" {
		t.Errorf("docker run: %s", got)
	}

	// -q prints the ID alone; --iidfile gets it too (with -q, the docker CLI
	// writes what it printed, newline included).
	iid := filepath.Join(t.TempDir(), "iid")
	q := d.dockerBuild("", "-q", "--build-arg", "TAG=latest", "--iidfile", iid, dir)
	written, _ := os.ReadFile(iid)
	if q.Code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(q.Stdout) || strings.TrimSpace(string(written)) != strings.TrimSpace(q.Stdout) {
		t.Errorf("docker build -q: %s, iidfile %q", q, written)
	}

	// A Dockerfile on stdin, a build arg, a target, a failing RUN.
	stages := "FROM busybox AS one\nARG WHO=nobody\nRUN echo \"hello $WHO\" > /who\nFROM one AS two\nRUN exit 4\n"
	st := d.dockerBuild(stages, "--build-arg", "WHO=docker", "--target", "one", "-t", "docker:one", "-")
	if st.Code != 0 || d.must("run", "--rm", "docker:one", "cat", "/who") != "hello docker\n" {
		t.Errorf("docker build - --target one: %s", st)
	}
	fail := d.dockerBuild(stages, "-")
	if fail.Code != 4 || !strings.Contains(fail.Stderr, "The command '/bin/sh -c exit 4' returned a non-zero code: 4") {
		t.Errorf("failing RUN through docker: %s", fail)
	}
	if p := d.docker("builder", "prune", "-f"); p.Code != 0 || !strings.Contains(p.Stdout, "Total reclaimed space") {
		t.Errorf("docker builder prune: %s", p)
	}
	if out := d.dockerBuild("", "--build-arg", "TAG=latest", dir); strings.Contains(out.Stdout, "Using cache") {
		t.Errorf("builder prune kept the cache:\n%s", out.Stdout)
	}
}

// TestBuildDockerCLISet builds the other Dockerfiles of these tests
// (stages run at once, every RUN --mount, scratch with the backtick
// escape, .dockerignore) with the stock docker CLI.
func TestBuildDockerCLISet(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	dockerCLI(t)
	d.importBusybox("busybox:latest")
	ignored, files := ignoreContext()
	tests := []struct {
		name    string
		context map[string]string
		want    []string
	}{
		{"stages", stagesContext(t.Name()), []string{"a\nb\nb\n"}},
		{"mounts", mountsContext(), []string{"from the context\n", "input\nscratch\n", "tool\n"}},
		{"scratch", scratchContext, []string{"Successfully tagged docker:scratch"}},
		{"dockerignore", ignored, []string{files}},
	}
	for _, tt := range tests {
		r := d.dockerBuild("", "--no-cache", "-t", "docker:"+tt.name, writeContext(t, tt.context))
		if r.Code != 0 {
			t.Errorf("%s: %s", tt.name, r)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(r.Stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, r.Stdout)
			}
		}
	}
	if got := d.docker("run", "--rm", "docker:scratch"); got.Stdout != "from scratch\n" {
		t.Errorf("docker run docker:scratch: %s", got)
	}
}

// TestBuildPull builds on an image that is only in a loopback registry:
// FROM pulls it when it is missing, --pull pulls it again.
func TestBuildPull(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	reg := startBerthRegistry(t, "none", nil)
	ref := reg + "/lib/busybox:v1"
	d.must("tag", "busybox:latest", ref)
	d.must("push", ref)
	d.must("rmi", ref)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo pulled > /p\n"})
	out := d.must("build", "-t", "pulled:v1", dir)
	if !strings.Contains(out, "Pulling from lib/busybox") || !strings.Contains(d.must("images", ref), "v1") {
		t.Errorf("FROM of a missing image did not pull it:\n%s", out)
	}
	out = d.must("build", dir)
	if strings.Contains(out, "Pulling") {
		t.Errorf("FROM of a present image pulled it again:\n%s", out)
	}
	out = d.must("build", "--pull", dir)
	if !strings.Contains(out, "Pulling from lib/busybox") {
		t.Errorf("--pull did not pull:\n%s", out)
	}
	if got := d.must("run", "--rm", "pulled:v1", "cat", "/p"); got != "pulled\n" {
		t.Errorf("run: %q", got)
	}
	// A stored image of another platform is missing: FROM --platform pulls
	// it, as Docker does, and says what the registry had.
	other := writeContext(t, map[string]string{"Dockerfile": "FROM --platform=linux/s390x " + ref + "\n"})
	r := d.berth("build", other)
	if r.Code == 0 || !strings.Contains(r.Stdout, "Pulling from lib/busybox") ||
		!strings.Contains(r.Stderr, "image with reference "+ref+" was found but does not match the specified platform: wanted linux/s390x, actual: linux/") {
		t.Errorf("FROM --platform of another platform: %s", r)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return
	}
	d.must("rmi", "pulled:v1", ref)
	for _, args := range [][]string{{}, {"--pull"}} {
		r := d.dockerBuild("", append(args, "-t", "pulled:docker", dir)...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "Pulling from lib/busybox") {
			t.Errorf("docker build %v: %s", args, r)
		}
	}
}

// TestBuildDockerCLIContexts gives the stock docker CLI's builds every
// kind of context: a tar on stdin, a Dockerfile on stdin beside a
// directory, -f naming another file; and --label, --iidfile without -q.
func TestBuildDockerCLIContexts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	dockerCLI(t)
	d.importBusybox("busybox:latest")
	dir := writeContext(t, map[string]string{"f": "from the directory\n", "Dockerfile": "FROM busybox\nRUN exit 9\n",
		"sub/Other.dockerfile": "FROM busybox\nCOPY f /other\n"})
	iid := filepath.Join(t.TempDir(), "iid")
	tests := []struct {
		name, stdin, file, want string
		args                    []string
	}{
		{name: "tar on stdin", stdin: string(tarBytes(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "from a tar\n"})),
			args: []string{"-"}, file: "/f", want: "from a tar\n"},
		{name: "Dockerfile on stdin", stdin: "FROM busybox\nCOPY f /f\n", args: []string{"-f", "-", dir}, file: "/f", want: "from the directory\n"},
		{name: "-f", args: []string{"-f", filepath.Join(dir, "sub", "Other.dockerfile"), dir}, file: "/other", want: "from the directory\n"},
		{name: "label and iidfile", args: []string{"--label", "org.example.by=docker", "--iidfile", iid, "-f", filepath.Join(dir, "sub/Other.dockerfile"), dir},
			file: "/other", want: "from the directory\n"},
	}
	for i, tt := range tests {
		tag := fmt.Sprintf("ctx:%d", i)
		r := d.dockerBuild(tt.stdin, append([]string{"-t", tag}, tt.args...)...)
		if r.Code != 0 {
			t.Errorf("%s: %s", tt.name, r)
			continue
		}
		if got := d.must("run", "--rm", tag, "cat", tt.file); got != tt.want {
			t.Errorf("%s: %s says %q, want %q", tt.name, tt.file, got, tt.want)
		}
	}
	// Without DOCKER_BUILDKIT the docker CLI asks /_ping which builder the
	// daemon has (Builder-Version 1, the classic one) and uses it; -t twice
	// tags the image twice.
	env := []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "dockercfg")}
	r := runCmd(t, nil, env, dockerCLI(t), "-H", d.Host, "build", "-t", "ctx:plain", "-t", "ctx:plain2", "-f", filepath.Join(dir, "sub/Other.dockerfile"), dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Successfully tagged ctx:plain\nSuccessfully tagged ctx:plain2\n") {
		t.Errorf("docker build without DOCKER_BUILDKIT: %s", r)
	}
	id := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "ctx:3"))
	if written, _ := os.ReadFile(iid); string(written) != id {
		t.Errorf("--iidfile wrote %q, the image is %s", written, id)
	}
	if got := d.must("image", "inspect", "-f", "{{index .Config.Labels \"org.example.by\"}}", "ctx:3"); got != "docker\n" {
		t.Errorf("--label: %q", got)
	}
}
