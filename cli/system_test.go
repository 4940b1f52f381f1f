package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSystemCommands(t *testing.T) {
	t.Parallel()
	runCases(t, []cliCase{
		{name: "system df", args: []string{"system", "df"}, wantOut: `TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
Images          3         0         394.2MB   394.2MB (100%)
Containers      0         0         0B        0B
Local Volumes   0         0         0B        0B
Build Cache     0         0         0B        0B
`},
		{name: "system df json", args: []string{"system", "df", "--format", "json"}, wantOut: `{"Active":"0","Reclaimable":"394.2MB (100%)","Size":"394.2MB","TotalCount":"3","Type":"Images"}
{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Containers"}
{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Local Volumes"}
{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Build Cache"}
`},
		{name: "system df verbose", args: []string{"system", "df", "-v"}, wantOut: `Images space usage:

REPOSITORY                     TAG       IMAGE ID       CREATED             SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS
127.0.0.1:5000/berth/busybox   latest    341b53579211   12 minutes ago      2.05MB    0B            2.05MB        0
<none>                         <none>    cc63b1657c52   About an hour ago   6B        0B            6B            0
berth-multi                    latest    fa73c27da301   3 days ago          392MB     0B            392.1MB       0

Containers space usage:

CONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES

Local Volumes space usage:

VOLUME NAME   LINKS     SIZE

Build cache usage: 0B

CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED
`},
		{name: "system df args", args: []string{"system", "df", "x"}, code: 1,
			wantErr: "berth: 'berth system df' accepts no arguments\n\nUsage:  berth system df [OPTIONS]\n\nRun 'berth system df --help' for more information\n"},
		{name: "info format", args: []string{"info", "--format", "{{.Driver}} {{.Images}} {{.ClientInfo.Context}}"}, wantOut: "overlay2 3 default\n"},
		{name: "version format", args: []string{"version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Client.APIVersion}}"}, wantOut: "0.1.0 1.51 1.51\n"},
		{name: "unknown command", args: []string{"foo"}, code: 1, wantErr: "berth: unknown command: berth foo\n\nRun 'berth --help' for more information\n"},
		{name: "unknown subcommand", args: []string{"image", "foo"}, code: 1,
			wantErr: "berth: unknown command: berth image foo\n\nUsage:  berth image\n\nRun 'berth image --help' for more information\n"},
		{name: "bad global flag", args: []string{"--badflag"}, code: 125,
			wantErr: "unknown flag: --badflag\n\nUsage:  berth [OPTIONS] COMMAND [ARG...]\n\nRun 'berth --help' for more information\n"},
		{name: "bad log level", args: []string{"--log-level", "loud", "images"}, code: 1, wantErr: "Unable to parse logging level: loud\n"},
	})
}

func TestInfo(t *testing.T) {
	t.Parallel()
	host, _ := startDaemon(t)
	out, errOut, code := run(t, host, nil, "info")
	want := `Client:
 Version:    ` + version().Version + `
 Context:    default
 Debug Mode: false

Server:
 Containers: 0
  Running: 0
  Paused: 0
  Stopped: 0
 Images: 3
 Server Version: 0.1.0
 Storage Driver: overlay2
  Backing Filesystem: extfs
 Logging Driver: json-file
 Cgroup Driver: cgroupfs
 Cgroup Version: 1
 Plugins:
  Volume: 
  Network: 
  Log: 
 Swarm: inactive
 Runtimes: crun runc
 Default Runtime: runc
 Init Binary: 
 containerd version: 
 runc version: 
 init version: 
 Security Options:
  seccomp
   Profile: builtin
 Kernel Version: 6.18.0
 Operating System: Debian GNU/Linux 12 (bookworm)
 OSType: linux
 Architecture: x86_64
 CPUs: 2
 Total Memory: 4GiB
 Name: host1
 ID: B3RT:H
 Docker Root Dir: /var/lib/berth
 Debug Mode: false
 Experimental: false
 Live Restore Enabled: false

`
	if out != want || errOut != "WARNING: No swap limit support\n" || code != 0 {
		t.Fatalf("info:\n%s\nstderr %q code %d\nwant:\n%s", out, errOut, code, want)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	host, _ := startDaemon(t)
	out, _, code := run(t, host, nil, "version")
	v := version()
	want := `Client:
 Version:           ` + v.Version + `
 API version:       1.51 (downgraded from ` + v.DefaultAPIVersion + `)
 Go version:        ` + v.GoVersion + `
 Git commit:        ` + v.GitCommit + `
 Built:             ` + v.BuildTime + `
 OS/Arch:           ` + v.Os + "/" + v.Arch + `
 Context:           default

Server: berth
 Engine:
  Version:          0.1.0
  API version:      1.51 (minimum version 1.24)
  Go version:       go1.26.8
  Git commit:       abc1234
  Built:            Mon Nov 23 19:00:00 2026
  OS/Arch:          linux/amd64
  Experimental:     false
 runc:
  Version:          1.1.5
  GitCommit:        v1.1.5-0-gf19387a
`
	if out != want || code != 0 {
		t.Fatalf("version:\n%s\nwant:\n%s", out, want)
	}
}

func TestCannotConnect(t *testing.T) {
	t.Parallel()
	host := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"images"}, {"system", "df"}, {"rmi", "x"}} {
		out, errOut, code := run(t, host, nil, args...)
		want := "Cannot connect to the berth daemon at " + host + ". Is the berth daemon running?\n"
		if out != "" || errOut != want || code != 1 {
			t.Errorf("%v: %q %q %d", args, out, errOut, code)
		}
	}
}

func TestDockerHostEnv(t *testing.T) {
	host, _ := startDaemon(t)
	t.Setenv("DOCKER_HOST", host)
	var out, errOut strings.Builder
	if code := Main([]string{"images", "-q", "berth-multi"}, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != "fa73c27da301\n" {
		t.Fatalf("with DOCKER_HOST: %q %q %d", out.String(), errOut.String(), code)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:  berth [OPTIONS] COMMAND\n", "Common Commands:\n", "  images      List images\n", "  run         Create and run a new container from an image\n",
			"Management Commands:\n  container   Manage containers\n  image       Manage images\n", "  system      Manage berth\n", "Global Options:\n  -D, --debug ", "  -H, --host string "}},
		{[]string{"image"}, []string{"Usage:  berth image COMMAND\n\nManage images\n\nCommands:\n  history     Show the history of an image\n", "Run 'berth image COMMAND --help' for more information on a command.\n"}},
		{[]string{"images", "--help"}, []string{"Usage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n\nAliases:\n  berth image ls, berth image list, berth images\n\nOptions:\n  -a, --all "}},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, "unix:///nonexistent.sock", nil, tt.args...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v output lacks %q:\n%s", tt.args, w, out)
			}
		}
		if errOut != "" || code != 0 || strings.Contains(out, "--help   help for") {
			t.Errorf("%v: stderr %q code %d", tt.args, errOut, code)
		}
	}
}

func TestDebugFlag(t *testing.T) {
	t.Parallel()
	host, _ := startDaemon(t)
	out, errOut, code := run(t, host, nil, "-D", "info", "--format", "{{.ClientInfo.Debug}}")
	if out != "true\n" || code != 0 || !strings.Contains(errOut, `level=DEBUG msg="connecting to daemon" host=`+host) {
		t.Fatalf("-D: %q %q %d", out, errOut, code)
	}
}
