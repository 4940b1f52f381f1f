package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Build tests build from the busybox fixture only. Base images that are
// not stored locally are named on a loopback registry: nothing here may
// pull from Docker Hub.

// writeContext writes a build context; names ending in "/" are
// directories, "@" marks a symlink ("name@" -> target).
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, strings.TrimSuffix(name, "@"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			os.MkdirAll(p, 0o755)
		case strings.HasSuffix(name, "@"):
			if err := os.Symlink(data, p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// inspectJSON decodes `image inspect` of ref into v.
func (d *daemon) inspectJSON(ref string, v any) {
	d.t.Helper()
	out := d.must("image", "inspect", ref)
	var docs []json.RawMessage
	if err := json.Unmarshal([]byte(out), &docs); err != nil || len(docs) != 1 {
		d.t.Fatalf("inspect %s: %v: %s", ref, err, out)
	}
	if err := json.Unmarshal(docs[0], v); err != nil {
		d.t.Fatal(err)
	}
}

// steps returns the "Step N/M : ..." lines of a build's output.
func steps(out string) []string {
	var s []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Step ") {
			s = append(s, l)
		}
	}
	return s
}

const instructionsDockerfile = `# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS base
MAINTAINER Berth Tester <tester@example.invalid>
ARG GREETING=hello
ARG UNSET
ENV APP_HOME=/srv/app \
    EMPTY= \
    QUOTED="two words"
ENV DEFAULTED=${UNSET:-fallback} ALT=${GREETING:+set} NOALT=${UNSET:+set}
LABEL org.example.title="berth test" version=1.0
EXPOSE 80 53/udp 8000-8001
WORKDIR $APP_HOME
RUN echo "$GREETING from $APP_HOME" > greeting.txt
RUN ["sh", "-c", "echo exec form > exec.txt"]
RUN <<EOF
set -e
echo heredoc one > heredoc.txt
echo heredoc two >> heredoc.txt
EOF
RUN cat <<-"END" > literal.txt
	not $EXPANDED
	END
COPY --chown=33:33 --chmod=0640 files/*.txt conf/
COPY --link --chmod=755 files/tool.sh /usr/local/bin/tool
ADD archive.tar.gz /opt/
ADD {{URL}}/remote/data.bin /downloads/
COPY <<EOF /etc/motd
Welcome $GREETING
EOF
USER 33:33
RUN id -u > /tmp/uid && touch /tmp/as-user
USER root
VOLUME ["/data"]
SHELL ["/bin/sh", "-ec"]
RUN echo shell form through $0 > shell.txt
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
STOPSIGNAL SIGQUIT
ONBUILD RUN echo triggered > /triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting.txt"]
`

type imageDoc struct {
	Author       string
	Comment      string
	Architecture string
	RootFS       struct{ Layers []string }
	Config       struct {
		Env          []string
		Labels       map[string]string
		ExposedPorts map[string]any
		WorkingDir   string
		User         string
		Volumes      map[string]any
		Shell        []string
		StopSignal   string
		OnBuild      []string
		Entrypoint   []string
		Cmd          []string
		Healthcheck  struct {
			Test              []string
			Interval, Timeout int64
			Retries           int
		}
	}
}

// TestBuildInstructions builds one Dockerfile that uses every instruction
// and checks the image's config, files and history.
func TestBuildInstructions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		fmt.Fprint(w, "remote bytes\n")
	}))
	defer remote.Close()
	dir := writeContext(t, map[string]string{
		"Dockerfile":     strings.ReplaceAll(instructionsDockerfile, "{{URL}}", remote.URL),
		"files/a.txt":    "file a\n",
		"files/b.txt":    "file b\n",
		"files/skip.md":  "not matched\n",
		"files/tool.sh":  "#!/bin/sh\necho tool\n",
		"archive.tar.gz": string(gzipTar(t, map[string]string{"pkg/readme": "from the archive\n"})),
	})
	out := d.must("build", "--build-arg", "TAG=latest", "--label", "built.by=berth", "-t", "every:thing", dir)
	if st := steps(out); len(st) != 32 || st[0] != "Step 1/32 : ARG BASE=busybox" || st[2] != "Step 3/32 : FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS base" {
		t.Errorf("%d steps, want 32 (the 2 global ARGs first, 29 instructions, --label):\n%s", len(st), out)
	}
	var img imageDoc
	d.inspectJSON("every:thing", &img)
	c := img.Config
	// The fixture sets no PATH: the builder adds Docker's default first.
	wantEnv := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin APP_HOME=/srv/app EMPTY= QUOTED=two words DEFAULTED=fallback ALT=set NOALT="
	if got := strings.Join(c.Env, " "); got != wantEnv {
		t.Errorf("Env %q, want it to end with %q", got, wantEnv)
	}
	switch {
	case c.Labels["org.example.title"] != "berth test" || c.Labels["version"] != "1.0" || c.Labels["built.by"] != "berth":
		t.Errorf("Labels %v", c.Labels)
	case len(c.ExposedPorts) != 4 || c.ExposedPorts["53/udp"] == nil || c.ExposedPorts["8001/tcp"] == nil:
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	case c.WorkingDir != "/srv/app" || c.User != "root" || c.Volumes["/data"] == nil || c.StopSignal != "SIGQUIT":
		t.Errorf("WorkingDir %q User %q Volumes %v StopSignal %q", c.WorkingDir, c.User, c.Volumes, c.StopSignal)
	case strings.Join(c.Shell, " ") != "/bin/sh -ec" || strings.Join(c.Entrypoint, " ") != "/bin/sh -c" || strings.Join(c.Cmd, " ") != "cat greeting.txt":
		t.Errorf("Shell %q Entrypoint %q Cmd %q", c.Shell, c.Entrypoint, c.Cmd)
	case strings.Join(c.Healthcheck.Test, "|") != "CMD-SHELL|wget -q -O- http://localhost/ || exit 1" || c.Healthcheck.Interval != int64(5*time.Second) || c.Healthcheck.Retries != 3:
		t.Errorf("Healthcheck %+v", c.Healthcheck)
	case len(c.OnBuild) != 1 || c.OnBuild[0] != "RUN echo triggered > /triggered":
		t.Errorf("OnBuild %q", c.OnBuild)
	case img.Author != "Berth Tester <tester@example.invalid>":
		t.Errorf("Author %q", img.Author)
	}
	// Layers: the base, 5 RUNs and 2 WORKDIR/COPY... only steps that
	// changed files have one: RUN x6, COPY x3, ADD x2, WORKDIR (new dir).
	if n := len(img.RootFS.Layers); n != 13 {
		t.Errorf("%d layers, want 13", n)
	}
	if got := d.must("run", "--rm", "every:thing"); got != "hello from /srv/app\n" {
		t.Errorf("the image's command printed %q", got)
	}
	checks := []struct{ cmd, want string }{
		{"cat exec.txt heredoc.txt literal.txt shell.txt", "exec form\nheredoc one\nheredoc two\nnot $EXPANDED\nshell form through /bin/sh\n"},
		{"stat -c '%u:%g %a %n' conf/a.txt conf/b.txt; ls conf", "33:33 640 conf/a.txt\n33:33 640 conf/b.txt\na.txt\nb.txt\n"},
		{"tool; cat /opt/pkg/readme /downloads/data.bin /etc/motd", "tool\nfrom the archive\nremote bytes\nWelcome hello\n"},
		{"stat -c '%a %Y' /downloads/data.bin", fmt.Sprintf("600 %d\n", time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC).Unix())},
		{"cat /tmp/uid; stat -c %u /tmp/as-user", "33\n33\n"},
	}
	for _, ck := range checks {
		if got := d.must("run", "--rm", "every:thing", ck.cmd); got != ck.want {
			t.Errorf("%s: got %q, want %q", ck.cmd, got, ck.want)
		}
	}
	hist := d.must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "every:thing")
	for _, want := range []string{
		`/bin/sh -ec #(nop)  CMD ["cat greeting.txt"]`,
		`/bin/sh -c #(nop)  ENV APP_HOME=/srv/app EMPTY= QUOTED=two words`,
		`|1 GREETING=hello /bin/sh -c echo "$GREETING from $APP_HOME" > greeting.txt`,
		`/bin/sh -c #(nop) WORKDIR /srv/app`,
		`/bin/sh -c #(nop)  ARG GREETING=hello`,
		"/bin/sh -c #(nop) COPY --chown=33:33multi:", // Docker's line, missing space included
		"/bin/sh -c #(nop) COPY file:",
		`/bin/sh -c #(nop)  VOLUME [/data]`,
		`/bin/sh -ec #(nop)  STOPSIGNAL SIGQUIT`,
		`/bin/sh -ec #(nop)  ONBUILD RUN echo triggered > /triggered`,
		"/bin/sh -c #(nop) ADD file:",
	} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	// ONBUILD runs in the child, and only there.
	child := writeContext(t, map[string]string{"Dockerfile": "FROM every:thing\nCMD [\"cat /triggered\"]\n"})
	out = d.must("build", "-t", "child:onbuild", child)
	// As Docker prints it: the triggers' steps, then FROM's one image.
	if !regexp.MustCompile(`Step 1/2 : FROM every:thing\n# Executing 1 build trigger\n ---> Running in [0-9a-f]{12}\n` +
		`Removing intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}\nStep 2/2 `).MatchString(out) {
		t.Errorf("child build output:\n%s", out)
	}
	if got := d.must("run", "--rm", "child:onbuild"); got != "triggered\n" {
		t.Errorf("the trigger's file: %q", got)
	}
	var childImg imageDoc
	d.inspectJSON("child:onbuild", &childImg)
	if len(childImg.Config.OnBuild) != 0 {
		t.Errorf("the child inherited the triggers: %q", childImg.Config.OnBuild)
	}
}

// scratchContext builds on scratch with the backtick escape character.
var scratchContext = map[string]string{"Dockerfile": "# escape=`\nFROM scratch\nCOPY --from=busybox:latest `\n  /bin/busybox /bin/busybox\n" +
	"ENV P=C:\\not\\escaped\nCMD [\"/bin/busybox\", \"echo\", \"from scratch\"]\n"}

// TestBuildScratchAndEscape builds on scratch with a static binary from
// another image, with the backtick escape character.
func TestBuildScratchAndEscape(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := writeContext(t, scratchContext)
	d.must("build", "-t", "tiny:v1", dir)
	if got := d.must("run", "--rm", "tiny:v1"); got != "from scratch\n" {
		t.Fatalf("run: %q", got)
	}
	var img imageDoc
	d.inspectJSON("tiny:v1", &img)
	if len(img.RootFS.Layers) != 1 || strings.Join(img.Config.Env, " ") != `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin P=C:\not\escaped` {
		t.Fatalf("layers %v env %q", img.RootFS.Layers, img.Config.Env)
	}
	// A scratch image that never got a file has no layers at all.
	empty := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL only=metadata\n"})
	d.must("build", "-t", "nofiles:v1", empty)
	var bare imageDoc
	d.inspectJSON("nofiles:v1", &bare)
	if len(bare.RootFS.Layers) != 0 || bare.Config.Labels["only"] != "metadata" {
		t.Fatalf("layers %v labels %v", bare.RootFS.Layers, bare.Config.Labels)
	}
}

// TestBuildStdin covers the three ways of `build -`: a Dockerfile alone, a
// tar context, and -f - beside a directory.
func TestBuildStdin(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	r := d.berthIn(strings.NewReader("FROM busybox\nRUN echo from stdin > /f\n"), "build", "-t", "stdin:df", "-")
	if r.Code != 0 || d.must("run", "--rm", "stdin:df", "cat", "/f") != "from stdin\n" {
		t.Fatalf("Dockerfile on stdin: %s", r)
	}
	ctx := tarBytes(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "from a tar\n"})
	if r := d.berthIn(strings.NewReader(string(ctx)), "build", "-t", "stdin:tar", "-"); r.Code != 0 {
		t.Fatalf("tar on stdin: %s", r)
	}
	if got := d.must("run", "--rm", "stdin:tar", "cat", "/f"); got != "from a tar\n" {
		t.Fatalf("tar context: %q", got)
	}
	dir := writeContext(t, map[string]string{"f": "from the directory\n", "Dockerfile": "FROM busybox\nRUN exit 9\n"})
	if r := d.berthIn(strings.NewReader("FROM busybox\nCOPY f /f\n"), "build", "-f", "-", "-t", "stdin:f", dir); r.Code != 0 {
		t.Fatalf("-f -: %s", r)
	}
	if got := d.must("run", "--rm", "stdin:f", "cat", "/f"); got != "from the directory\n" {
		t.Fatalf("-f - context: %q", got)
	}
}

// ignoreContext is a context with a .dockerignore of Docker's pattern
// kinds, and the files its build lists.
func ignoreContext() (map[string]string, string) {
	return map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort\n",
		".dockerignore": "# comment\n*.log\n**/*.tmp\nsecrets\n!secrets/public.pem\nnode_modules\nDockerfile\n",
		"app.go":        "x", "debug.log": "x", "sub/keep.log": "x", "sub/deep/x.tmp": "x",
		"secrets/key": "x", "secrets/public.pem": "x", "node_modules/m/index.js": "x",
		"sub/deep/ok.go": "x",
	}, "./.dockerignore\n./app.go\n./secrets/public.pem\n./sub/deep/ok.go\n./sub/keep.log\n"
}

// TestBuildDockerignore checks Docker's pattern rules end to end, the
// daemon's copy included (a raw tar keeps the ignored files).
func TestBuildDockerignore(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	files, want := ignoreContext()
	out := d.must("build", "--no-cache", writeContext(t, files))
	if !strings.Contains(out, want) {
		t.Errorf("berth CLI context:\n%s\nwant the files\n%s", out, want)
	}
	r := d.berthIn(strings.NewReader(string(tarBytes(t, files))), "build", "--no-cache", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, want) {
		t.Errorf("raw tar context (filtered by the daemon):\n%s", r)
	}
}

// tarBytes is a tar of files (names as given, mode 0644).
func tarBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(tarBytes(t, files))
	gz.Close()
	return buf.Bytes()
}
