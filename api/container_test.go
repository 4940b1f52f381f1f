package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
	"berth/events"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// containerEnv is a server with the fake container backend on a unix
// socket, and a moby client for it.
type containerEnv struct {
	client *client.Client
	ctrs   *apitest.Containers
	bus    *events.Bus
	h      http.Handler
	sock   string
}

func newContainerEnv(t *testing.T) *containerEnv {
	t.Helper()
	imgs, sys := fixture()
	bus := events.New()
	ctrs := apitest.NewContainers(time.Now, imgs, bus)
	h := api.New(api.Options{Images: imgs, System: sys, Containers: ctrs, Events: bus, Version: api.VersionInfo{Version: "0.1.0"}})
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &containerEnv{client: c, ctrs: ctrs, bus: bus, h: h, sock: sock}
}

// create makes a container running cmd from busybox.
func (e *containerEnv) create(t *testing.T, name string, cfg container.Config, host *container.HostConfig) string {
	t.Helper()
	cfg.Image = "busybox"
	res, err := e.client.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: name, Config: &cfg, HostConfig: host})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res.ID
}

func (e *containerEnv) wait(t *testing.T, id string, cond container.WaitCondition) <-chan int64 {
	t.Helper()
	res := e.client.ContainerWait(context.Background(), id, client.ContainerWaitOptions{Condition: cond})
	out := make(chan int64, 1)
	go func() {
		select {
		case r := <-res.Result:
			out <- r.StatusCode
		case err := <-res.Error:
			t.Errorf("wait: %v", err)
			out <- -1
		}
	}()
	return out
}

func TestContainerRoutes(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	id := env.create(t, "web", container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	tests := []struct {
		method, target, body string
		status               int
		want                 string // substring of the body
	}{
		{"POST", "/containers/create?name=web", `{"Image":"busybox","Cmd":["true"]}`, 409, `Conflict. The container name \"/web\" is already in use by container \"` + id + `\". You have to remove (or rename) that container to be able to reuse that name.`},
		{"POST", "/containers/create", ``, 400, "config cannot be empty in order to create a container"},
		{"POST", "/containers/create", `{"Image":"nope","Cmd":["true"]}`, 404, "No such image: nope"},
		{"POST", "/containers/create?name=a/b", `{"Image":"busybox","Cmd":["true"]}`, 400, "Invalid container name (a/b)"},
		{"POST", "/containers/create?platform=linux/amd64&name=ok", `{"Image":"busybox","Cmd":["true"]}`, 201, `"Warnings":[]`},
		{"GET", "/containers/nope/json", ``, 404, `{"message":"No such container: nope"}`},
		{"GET", "/v1.50/containers/web/json", ``, 200, `"Name":"/web"`},
		{"GET", "/containers/web/json", ``, 200, `"SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":""`},
		{"POST", "/containers/web/start", ``, 204, ""},
		{"POST", "/containers/web/start", ``, 304, ""},
		{"GET", "/containers/web/json", ``, 200, `"IPAddress":"172.17.0.2","IPPrefixLen":16`},
		{"GET", "/containers/json", ``, 200, `"Names":["/web"]`},
		{"GET", "/containers/json?filters={\"status\":[\"bogus\"]}", ``, 400, "invalid filter 'status=bogus'"},
		{"GET", "/containers/json?limit=x", ``, 400, "invalid limit"},
		{"POST", "/containers/web/kill?signal=NOPE", ``, 400, "Invalid signal: NOPE"},
		{"POST", "/containers/web/pause", ``, 204, ""},
		{"POST", "/containers/web/pause", ``, 409, "Container " + id + " is already paused"},
		{"POST", "/containers/web/attach?stream=1", ``, 409, "You cannot attach to a paused container, unpause it first"},
		{"POST", "/containers/web/unpause", ``, 204, ""},
		{"GET", "/containers/web/top", ``, 200, `"Titles":["UID","PID","PPID","C","STIME","TTY","TIME","CMD"]`},
		{"POST", "/containers/web/resize?h=x&w=80", ``, 400, "invalid terminal size"},
		{"POST", "/containers/web/resize?h=24&w=80", ``, 200, ""},
		{"POST", "/containers/web/wait?condition=soon", ``, 400, `wait condition \"soon\"`},
		{"DELETE", "/containers/web", ``, 409, "You cannot remove a running container " + id + ". Stop the container before attempting removal or force remove"},
		{"POST", "/containers/web/rename?name=", ``, 400, "Neither old nor new names may be empty"},
		{"POST", "/containers/web/rename?name=ok", ``, 409, `The container name \"/ok\" is already in use`},
		{"POST", "/containers/web/rename?name=web2", ``, 204, ""},
		{"POST", "/containers/web2/stop?t=x", ``, 400, "invalid value for t"},
		{"POST", "/containers/web2/stop?t=1", ``, 204, ""},
		{"POST", "/containers/web2/stop", ``, 304, ""},
		{"POST", "/containers/web2/kill", ``, 409, "Cannot kill container: web2: Container " + id + " is not running"},
		{"GET", "/containers/web2/logs", ``, 400, "Bad parameters: you must choose at least one stream"},
		{"HEAD", "/containers/web2/archive", ``, 400, ""},
		{"GET", "/containers/web2/archive?path=/nope", ``, 404, "Could not find the file /nope in container web2"},
		{"POST", "/containers/web2/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
		{"POST", "/containers/web2/exec", `{"Cmd":["true"]}`, 409, "Container " + id + " is not running"},
		{"GET", "/exec/nope/json", ``, 404, "No such exec instance: nope"},
		{"GET", "/events?filters={\"colour\":[\"red\"]}", ``, 400, "invalid filter 'colour'"},
		{"GET", "/events?since=x", ``, 400, "invalid timestamp"},
		{"POST", "/containers/prune", ``, 200, `"ContainersDeleted":["`},
		{"GET", "/containers/json?all=1", ``, 200, `[]`},
	}
	for _, tt := range tests {
		rec := do(t, env.h, tt.method, tt.target, strings.NewReader(tt.body))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s %s = %d %s, want %d containing %q", tt.method, tt.target, rec.Code, rec.Body.String(), tt.status, tt.want)
		}
	}
}

// TestRunAttached follows `docker run`: wait and attach before start, then
// start; the output arrives demultiplexed and the wait reports the status.
func TestRunAttached(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "", container.Config{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, AttachStdout: true, AttachStderr: true}, nil)
	status := env.wait(t, id, container.WaitConditionNextExit)
	att, err := env.client.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, _ := att.MediaType(); mt != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("media type %q", mt)
	}
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if code := <-status; code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
}

// TestAttachStdin pipes input through a hijacked connection to cat.
// Without a tty the client's half-close is stdin's EOF, which ends a
// StdinOnce container; with one it is not (the end of input travels
// through the terminal), so that container runs until it is killed.
func TestAttachStdin(t *testing.T) {
	t.Parallel()
	for _, tty := range []bool{false, true} {
		env := newContainerEnv(t)
		ctx := context.Background()
		id := env.create(t, "", container.Config{Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true, Tty: tty}, nil)
		status := env.wait(t, id, container.WaitConditionNextExit)
		att, err := env.client.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := att.Conn.Write([]byte("hello\nworld\n")); err != nil {
			t.Fatal(err)
		}
		if err := att.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		want, wantCode := "\x01\x00\x00\x00\x00\x00\x00\x0chello\nworld\n", int64(0)
		if tty {
			// Raw: no frames, the pty's line endings.
			want, wantCode = "hello\r\nworld\r\n", 137
			got := make([]byte, len(want))
			if _, err := io.ReadFull(att.Reader, got); err != nil || string(got) != want {
				t.Fatalf("tty stream %q, %v", got, err)
			}
			if _, err := env.client.ContainerKill(ctx, id, client.ContainerKillOptions{}); err != nil {
				t.Fatal(err)
			}
			want = ""
		}
		out, err := io.ReadAll(att.Reader)
		att.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Errorf("tty=%v: stream %q, want %q", tty, out, want)
		}
		if code := <-status; code != wantCode {
			t.Errorf("tty=%v: exit status %d, want %d", tty, code, wantCode)
		}
	}
}

// TestAttachDetach types the detach keys: the session ends, the container
// keeps running.
func TestAttachDetach(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "", container.Config{Cmd: []string{"cat"}, OpenStdin: true, Tty: true}, nil)
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	att, err := env.client.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, DetachKeys: "ctrl-x,x"})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	// A partial sequence is passed on once it breaks.
	if _, err := att.Conn.Write([]byte("a\x18b")); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 3)
	if _, err := io.ReadFull(att.Reader, echo); err != nil || string(echo) != "a\x18b" {
		t.Fatalf("echo %q, %v", echo, err)
	}
	if _, err := att.Conn.Write([]byte("\x18x")); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(att.Reader); err != nil || len(rest) != 0 {
		t.Errorf("after the detach keys: %q, %v; want the stream to end", rest, err)
	}
	ins, err := env.client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || !ins.Container.State.Running {
		t.Errorf("after detach: %+v, %v", ins.Container.State, err)
	}
}

// TestWaitHeadersFirst checks that the status line of a wait arrives
// before the container exits, and the body when it does.
func TestWaitHeadersFirst(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "", container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", env.sock)
	}}}
	resp, err := hc.Post("http://berth/containers/"+id+"/wait", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := env.client.ContainerKill(ctx, id, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	var w container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || w.StatusCode != 137 {
		t.Errorf("wait body %+v, %v", w, err)
	}
}
