package cli

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
	berthcontainer "berth/container"
	"berth/events"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
)

// frozen is the fake daemon's clock in container tests: an hour ago, so
// ages computed by the client ("About an hour ago") and by the daemon
// ("Up Less than a second") are stable for the whole test.
var frozen = time.Now().Add(-time.Hour).Truncate(time.Second)

// Deterministic container ids of the seed: the fake numbers them.
const (
	webID     = "201255379175636a9d8996b54b85f4d738e5b78e61870cf8cc630d505f274ad6"
	exitedID  = "36aa4512922faf45d9c2fb9066ff2dec72c627c2afe5dd1b6d06329f515e19ac"
	createdID = "84ed8db46e7bedbc6d325e89e4ad6c7476a0a0560755a5c18cf0a9627644b55e"
)

// startContainerDaemon serves the in-memory image, container and event
// backends on a unix socket. With seed, it holds "web" (running top with
// a published port and labels), "exited" (exited 3 after writing to both
// streams) and "created".
func startContainerDaemon(t *testing.T, seed bool) (string, *apitest.Containers) {
	t.Helper()
	return startContainerDaemonWith(t, seed, func(h http.Handler) http.Handler { return h })
}

// startContainerDaemonWith is startContainerDaemon with the handler
// wrapped, for tests that watch the requests.
func startContainerDaemonWith(t *testing.T, seed bool, wrap func(http.Handler) http.Handler) (string, *apitest.Containers) {
	t.Helper()
	imgs := apitest.NewImages(time.Now, fixtureImages(time.Now().Truncate(time.Minute))...)
	bus := events.New()
	ctrs := apitest.NewContainers(func() time.Time { return frozen }, imgs, bus)
	if seed {
		seedContainers(t, ctrs)
	}
	sys := &apitest.System{Images: imgs, InfoDoc: system.Info{ID: "B3RT:H", OSType: "linux"}}
	h := api.New(api.Options{Images: imgs, System: sys, Containers: ctrs, Events: bus, Version: api.VersionInfo{Version: "0.1.0"}})
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(wrap(h))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock, ctrs
}

func seedContainers(t *testing.T, ctrs *apitest.Containers) {
	t.Helper()
	ctx := context.Background()
	create := func(name string, cfg container.Config, host *container.HostConfig) string {
		cfg.Image = "busybox"
		res, err := ctrs.ContainerCreate(ctx, berthcontainer.CreateOptions{Name: name, Config: &cfg, HostConfig: host})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	web := create("web", container.Config{Cmd: []string{"top"}, Labels: map[string]string{"tier": "front", "app": "demo"}},
		&container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}})
	exited := create("exited", container.Config{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil)
	create("created", container.Config{Cmd: []string{"echo", "never"}}, nil)
	if err := ctrs.ContainerStart(ctx, web); err != nil {
		t.Fatal(err)
	}
	status, err := ctrs.ContainerWait(ctx, exited, container.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctrs.ContainerStart(ctx, exited); err != nil {
		t.Fatal(err)
	}
	<-status
	t.Cleanup(func() {
		// Stop the running program so no goroutine outlives the test.
		_ = ctrs.ContainerKill(context.Background(), web, "KILL")
	})
}

// containerCase is a CLI invocation against a seeded daemon. wantOut and
// wantErr are exact unless the *Has forms are used.
type containerCase struct {
	name           string
	args           []string
	stdin          string
	wantOut        string
	wantErr        string
	outHas, errHas []string
	code           int
}

func runContainerCases(t *testing.T, tests []containerCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, _ := startContainerDaemon(t, true)
			out, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
			if tt.outHas == nil && out != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.wantOut)
			}
			for _, w := range tt.outHas {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tt.errHas == nil && errOut != tt.wantErr {
				t.Errorf("stderr:\n%q\nwant:\n%q", errOut, tt.wantErr)
			}
			for _, w := range tt.errHas {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, errOut)
			}
		})
	}
}

func TestPs(t *testing.T) {
	t.Parallel()
	runContainerCases(t, []containerCase{
		{name: "running", args: []string{"ps"}, wantOut: `CONTAINER ID   IMAGE     COMMAND   CREATED             STATUS                  PORTS                                     NAMES
201255379175   busybox   "top"     About an hour ago   Up Less than a second   0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web
`},
		{name: "all", args: []string{"ps", "-a"}, wantOut: `CONTAINER ID   IMAGE     COMMAND                  CREATED             STATUS                              PORTS                                     NAMES
84ed8db46e7b   busybox   "echo never"             About an hour ago   Created                                                                       created
36aa4512922f   busybox   "sh -c echo out; ech…"   About an hour ago   Exited (3) Less than a second ago                                             exited
201255379175   busybox   "top"                    About an hour ago   Up Less than a second               0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web
`},
		{name: "quiet", args: []string{"ps", "-aq"}, wantOut: "84ed8db46e7b\n36aa4512922f\n201255379175\n"},
		{name: "no-trunc quiet", args: []string{"container", "ls", "-q", "--no-trunc"}, wantOut: webID + "\n"},
		{name: "latest", args: []string{"ps", "-l", "--format", "{{.Names}} {{.State}}"}, wantOut: "created created\n"},
		{name: "last n", args: []string{"ps", "-n", "2", "--format", "{{.Names}}"}, wantOut: "created\nexited\n"},
		{name: "filter exited", args: []string{"ps", "-a", "--filter", "exited=3", "--format", "{{.ID}} {{.Status}}"}, wantOut: "36aa4512922f Exited (3) Less than a second ago\n"},
		{name: "filter status", args: []string{"ps", "--filter", "status=created", "-q"}, wantOut: "84ed8db46e7b\n"},
		{name: "filter label", args: []string{"ps", "-a", "-f", "label=tier=front", "--format", "{{.Names}}: {{.Labels}}"}, wantOut: "web: app=demo,tier=front\n"},
		{name: "filter name and ancestor", args: []string{"ps", "-a", "-f", "name=^/ex", "-f", "ancestor=busybox", "-q"}, wantOut: "36aa4512922f\n"},
		{name: "bad filter", args: []string{"ps", "-f", "status=sleeping"}, code: 1, wantErr: "Error response from daemon: invalid filter 'status=sleeping'\n"},
		{name: "size", args: []string{"ps", "-s", "--format", "{{.Names}} {{.Size}}"}, wantOut: "web 0B (virtual 2.05MB)\n"},
		{name: "json", args: []string{"ps", "--format", "json"}, wantOut: `{"Command":"\"top\"","CreatedAt":"` + frozen.Local().Format("2006-01-02 15:04:05 -0700 MST") + `","ID":"201255379175","Image":"busybox","Labels":"app=demo,tier=front","LocalVolumes":"0","Mounts":"","Names":"web","Networks":"bridge","Platform":null,"Ports":"0.0.0.0:8080-\u003e80/tcp, [::]:8080-\u003e80/tcp","RunningFor":"About an hour ago","Size":"0B","State":"running","Status":"Up Less than a second"}` + "\n"},
		{name: "args", args: []string{"ps", "x"}, code: 1, wantErr: "berth: 'berth ps' accepts no arguments\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"},
	})
}

func TestDisplayPorts(t *testing.T) {
	t.Parallel()
	p := func(ip string, priv, pub uint16, proto string) container.PortSummary {
		s := container.PortSummary{PrivatePort: priv, PublicPort: pub, Type: proto}
		if ip != "" {
			s.IP = mustAddr(ip)
		}
		return s
	}
	tests := []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{p("", 80, 0, "tcp")}, "80/tcp"},
		{[]container.PortSummary{p("", 81, 0, "tcp"), p("", 80, 0, "tcp"), p("", 82, 0, "tcp")}, "80-82/tcp"},
		{[]container.PortSummary{p("", 80, 0, "tcp"), p("", 81, 0, "udp"), p("", 83, 0, "tcp")}, "80/tcp, 83/tcp, 81/udp"},
		{[]container.PortSummary{p("0.0.0.0", 8000, 8000, "tcp"), p("0.0.0.0", 8001, 8001, "tcp")}, "0.0.0.0:8000-8001->8000-8001/tcp"},
		{[]container.PortSummary{p("::", 80, 8080, "tcp"), p("0.0.0.0", 80, 8080, "tcp")}, "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"},
		{[]container.PortSummary{p("127.0.0.1", 53, 5353, "udp"), p("", 80, 0, "tcp")}, "80/tcp, 127.0.0.1:5353->53/udp"},
	}
	for _, tt := range tests {
		if got := displayPorts(tt.ports); got != tt.want {
			t.Errorf("displayPorts(%v) = %q, want %q", tt.ports, got, tt.want)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
