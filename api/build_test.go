package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"berth/api"
	"berth/api/apitest"
	"berth/build"
	"berth/errdefs"
	"berth/image"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

func buildServer(t *testing.T, b *apitest.Builds) *client.Client {
	t.Helper()
	imgs, sys := fixture()
	srv := httptest.NewServer(api.New(api.Options{Images: imgs, System: sys, Build: b}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type buildLine struct {
	jsonstream.Message
	ErrorMessage string `json:"error"`
}

func buildLines(t *testing.T, r io.Reader) []buildLine {
	t.Helper()
	var out []buildLine
	dec := json.NewDecoder(r)
	for {
		var m buildLine
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

var builtID = digest.FromString("built")

func succeed(opts build.BuildOptions, _ []byte, sink build.Sink) (*build.Result, error) {
	sink(build.Event{Text: "Step 1/1 : FROM busybox\n"})
	sink(build.Event{Progress: &image.Progress{ID: "abc", Status: "Downloading", Current: 1, Total: 2}})
	sink(build.Event{ImageID: builtID})
	sink(build.Event{Text: "Successfully built " + builtID.Encoded()[:12] + "\n"})
	return &build.Result{ID: builtID}, nil
}

func TestBuildStream(t *testing.T) {
	t.Parallel()
	b := &apitest.Builds{Script: succeed}
	c := buildServer(t, b)
	res, err := c.ImageBuild(context.Background(), strings.NewReader("context bytes"), client.ImageBuildOptions{Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := buildLines(t, res.Body)
	res.Body.Close()
	if len(lines) != 4 {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	if lines[0].Stream != "Step 1/1 : FROM busybox\n" || lines[1].ID != "abc" || lines[1].Progress == nil || lines[1].Progress.Total != 2 {
		t.Errorf("step and progress lines: %+v %+v", lines[0], lines[1])
	}
	if lines[2].ID != "moby.image.id" || lines[2].Aux == nil || string(*lines[2].Aux) != fmt.Sprintf(`{"ID":%q}`, builtID) {
		t.Errorf("aux line: %+v", lines[2])
	}
	if got := string(b.Last().Context); got != "context bytes" {
		t.Errorf("context %q", got)
	}
}

func TestBuildQuiet(t *testing.T) {
	t.Parallel()
	c := buildServer(t, &apitest.Builds{Script: succeed})
	res, err := c.ImageBuild(context.Background(), strings.NewReader(""), client.ImageBuildOptions{SuppressOutput: true, Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := buildLines(t, res.Body)
	res.Body.Close()
	if len(lines) != 2 || lines[0].Aux == nil || lines[1].Stream != builtID.String()+"\n" {
		t.Fatalf("quiet build said %+v; want the aux ID, then the ID alone", lines)
	}
}

func TestBuildOptions(t *testing.T) {
	t.Parallel()
	b := &apitest.Builds{}
	c := buildServer(t, b)
	v := "1.0"
	res, err := c.ImageBuild(context.Background(), strings.NewReader(""), client.ImageBuildOptions{
		Tags: []string{"a:1", "b"}, Dockerfile: "sub/Dockerfile.dev", BuildArgs: map[string]*string{"V": &v, "FROM_ENV": nil},
		Labels: map[string]string{"l": "x"}, Target: "final", NoCache: true, PullParent: true, Remove: false,
		NetworkMode: "none", Memory: 64 << 20, ShmSize: 1 << 20, ExtraHosts: []string{"h:10.0.0.1"},
		Ulimits:     []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}},
		AuthConfigs: map[string]registry.AuthConfig{"127.0.0.1:5000": {Username: "u", Password: "p"}, "https://index.docker.io/v1/": {Username: "hub"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	o := b.Last().Options
	switch {
	case strings.Join(o.Tags, ",") != "a:1,b" || o.Dockerfile != "sub/Dockerfile.dev" || o.Target != "final":
		t.Errorf("tags, dockerfile, target: %+v", o)
	case o.BuildArgs["V"] == nil || *o.BuildArgs["V"] != "1.0" || o.BuildArgs["FROM_ENV"] != nil:
		t.Errorf("build args: %v", o.BuildArgs)
	case o.Labels["l"] != "x" || !o.NoCache || !o.Pull || o.Remove || o.ForceRemove:
		t.Errorf("labels and flags: %+v", o)
	case o.HostConfig.NetworkMode != "none" || o.HostConfig.Memory != 64<<20 || o.HostConfig.ShmSize != 1<<20 ||
		len(o.HostConfig.ExtraHosts) != 1 || len(o.HostConfig.Ulimits) != 1:
		t.Errorf("host config: %+v", o.HostConfig)
	case o.Auth["127.0.0.1:5000"].Username != "u" || o.Auth["docker.io"].Username != "hub":
		t.Errorf("registry credentials by host: %+v", o.Auth)
	}
	res, err = c.ImageBuild(context.Background(), strings.NewReader(""), client.ImageBuildOptions{ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if o := b.Last().Options; !o.Remove || !o.ForceRemove {
		t.Errorf("--force-rm implies --rm: %+v", o)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   client.ImageBuildOptions
		script func(build.BuildOptions, []byte, build.Sink) (*build.Result, error)
		// status is the HTTP error; 0 means the error comes in the stream
		// with code.
		status int
		code   int
		want   string
	}{
		{name: "before output", script: func(build.BuildOptions, []byte, build.Sink) (*build.Result, error) {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Dockerfile:2: unknown instruction: RUNN")
		}, status: http.StatusBadRequest, want: "Dockerfile:2: unknown instruction: RUNN"},
		{name: "failed run", script: func(_ build.BuildOptions, _ []byte, sink build.Sink) (*build.Result, error) {
			sink(build.Event{Text: "Step 2/2 : RUN exit 3\n"})
			return nil, &build.ExitError{Cmd: "/bin/sh -c exit 3", Code: 3}
		}, code: 3, want: "The command '/bin/sh -c exit 3' returned a non-zero code: 3"},
		{name: "quiet failure shows what it held", opts: client.ImageBuildOptions{SuppressOutput: true},
			script: func(_ build.BuildOptions, _ []byte, sink build.Sink) (*build.Result, error) {
				sink(build.Event{Text: "Step 1/1 : COPY x /\n"})
				return nil, errdefs.Errorf(errdefs.ErrNotFound, "COPY failed: file not found")
			}, want: "COPY failed: file not found"},
		{name: "buildkit", opts: client.ImageBuildOptions{Version: "2"}, status: http.StatusBadRequest, want: "BuildKit is not supported"},
		{name: "remote context", opts: client.ImageBuildOptions{RemoteContext: "https://127.0.0.1/ctx.tar"}, status: http.StatusBadRequest, want: "remote build contexts"},
		{name: "cache-from", opts: client.ImageBuildOptions{CacheFrom: []string{"x"}}, status: http.StatusBadRequest, want: "cache-from is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := buildServer(t, &apitest.Builds{Script: tt.script})
			res, err := c.ImageBuild(context.Background(), strings.NewReader(""), tt.opts)
			if tt.status != 0 {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want HTTP %d with %q", err, tt.status, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := buildLines(t, res.Body)
			res.Body.Close()
			last := lines[len(lines)-1]
			if last.Error == nil || last.Error.Message != tt.want || last.Error.Code != tt.code || last.ErrorMessage != tt.want {
				t.Fatalf("last line %+v, want error %q code %d", last, tt.want, tt.code)
			}
			if len(lines) < 2 || !strings.HasPrefix(lines[0].Stream, "Step ") {
				t.Fatalf("the output before the error is missing: %+v", lines)
			}
		})
	}
}

func TestBuildPrune(t *testing.T) {
	t.Parallel()
	b := &apitest.Builds{}
	b.PruneReport.SpaceReclaimed = 42
	c := buildServer(t, b)
	res, err := c.BuildCachePrune(context.Background(), client.BuildCachePruneOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.SpaceReclaimed != 42 || res.Report.CachesDeleted == nil || b.Pruned != 1 {
		t.Fatalf("prune report %+v, calls %d", res.Report, b.Pruned)
	}
	var body bytes.Buffer
	json.NewEncoder(&body).Encode(res.Report)
	if !strings.Contains(body.String(), `"CachesDeleted":[]`) {
		t.Errorf("an empty prune lists no caches as [] as dockerd does: %s", body.String())
	}
}
