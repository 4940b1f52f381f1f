package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"berth/build"
	"berth/errdefs"
	"berth/remote/credentials"

	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
)

// BuildBackend builds images (POST /build) and empties the build cache
// (POST /build/prune).
type BuildBackend interface {
	Build(ctx context.Context, opts build.BuildOptions, body io.Reader, sink build.Sink) (*build.Result, error)
	Prune(ctx context.Context) (buildtypes.CachePruneReport, error)
}

func (s *server) addBuildRoutes() {
	s.handle(http.MethodPost, "/build", s.build)
	s.handle(http.MethodPost, "/build/prune", s.buildPrune)
}

// build serves the classic builder protocol: the body is the context, the
// answer a JSON-message stream of step lines ("stream"), pull progress,
// the image ID ("aux") and, on failure, an error whose code is a failed
// RUN's exit status (the docker CLI exits with it). A failure before any
// output is a plain HTTP error.
func (s *server) build(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	opts, err := buildOptions(q, r.Header)
	if err != nil {
		return err
	}
	out := &buildStream{w: &lazyWriter{w: w, header: http.Header{"Content-Type": {"application/json"}}}, quiet: boolValue(q, "q")}
	res, err := s.opts.Build.Build(r.Context(), opts, r.Body, out.event)
	if err != nil {
		return out.fail(err)
	}
	if out.quiet {
		return out.write(streamMessage{Message: jsonstream.Message{Stream: res.ID.String() + "\n"}})
	}
	return out.err
}

// buildStream writes a build's events. Quiet builds keep them and show
// them only when the build fails.
type buildStream struct {
	mu    sync.Mutex
	w     *lazyWriter
	quiet bool
	held  []streamMessage
	err   error // the first write error: the client left
}

func (b *buildStream) event(e build.Event) {
	var m streamMessage
	switch {
	case e.ImageID != "":
		aux := json.RawMessage(fmt.Sprintf(`{"ID":%q}`, e.ImageID))
		b.write(streamMessage{Message: jsonstream.Message{ID: "moby.image.id", Aux: &aux}})
		return
	case e.Progress != nil:
		m.ID, m.Status = e.Progress.ID, e.Progress.Status
		if e.Progress.ID != "" && !e.Progress.Message {
			m.Progress = &jsonstream.Progress{Current: e.Progress.Current, Total: e.Progress.Total}
		}
	default:
		m.Stream = e.Text
	}
	if b.quiet {
		b.mu.Lock()
		b.held = append(b.held, m)
		b.mu.Unlock()
		return
	}
	b.write(m)
}

func (b *buildStream) write(m streamMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	raw, err := json.Marshal(m)
	if err == nil {
		_, err = b.w.Write(append(raw, '\r', '\n'))
	}
	if err == nil {
		if f, ok := b.w.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	b.err = err
	return err
}

// fail ends the stream with the error, after what a quiet build held; a
// build that wrote nothing yet fails with an HTTP status instead.
func (b *buildStream) fail(err error) error {
	b.mu.Lock()
	held, started := b.held, b.w.started
	b.held = nil
	b.mu.Unlock()
	if !started && len(held) == 0 {
		return err
	}
	for _, m := range held {
		b.write(m)
	}
	je := &jsonstream.Error{Message: err.Error()}
	var exit *build.ExitError
	if errors.As(err, &exit) {
		je.Code = exit.Code
	}
	return b.write(streamMessage{Message: jsonstream.Message{Error: je}, ErrorMessage: err.Error()})
}

// buildOptions reads POST /build's query and X-Registry-Config.
func buildOptions(q url.Values, h http.Header) (build.BuildOptions, error) {
	o := build.BuildOptions{Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NoCache: boolValue(q, "nocache"), Pull: boolValue(q, "pull"), Platform: q.Get("platform"),
		ForceRemove: boolValue(q, "forcerm")}
	o.Remove = o.ForceRemove || q.Get("rm") == "" || boolValue(q, "rm")
	switch {
	case q.Get("remote") != "":
		return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "remote build contexts (%s) are not supported: send the context in the request body", q.Get("remote"))
	case q.Get("version") == string(buildtypes.BuilderBuildKit):
		return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "BuildKit is not supported: this daemon speaks the classic builder protocol (Builder-Version 1); build with DOCKER_BUILDKIT=0")
	case boolValue(q, "squash"):
		return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "squash is not supported")
	case q.Get("outputs") != "":
		return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "build outputs are a BuildKit feature and not supported")
	}
	for _, f := range []struct {
		key string
		dst any
	}{{"buildargs", &o.BuildArgs}, {"labels", &o.Labels}, {"ulimits", &o.HostConfig.Ulimits}} {
		if v := q.Get(f.key); v != "" {
			if err := json.Unmarshal([]byte(v), f.dst); err != nil {
				return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s: %v", f.key, err)
			}
		}
	}
	var cacheFrom []string
	if v := q.Get("cachefrom"); v != "" {
		if err := json.Unmarshal([]byte(v), &cacheFrom); err != nil || len(cacheFrom) > 0 {
			return o, errdefs.Errorf(errdefs.ErrInvalidArgument, "cache-from is not supported: the cache is the local images")
		}
	}
	if err := hostConfigOptions(q, &o.HostConfig); err != nil {
		return o, err
	}
	auth, err := registryConfig(h.Get("X-Registry-Config"))
	o.Auth = auth
	return o, err
}

// hostConfigOptions reads what RUN containers get from `build`'s flags.
func hostConfigOptions(q url.Values, hc *container.HostConfig) error {
	hc.NetworkMode = container.NetworkMode(q.Get("networkmode"))
	hc.ExtraHosts = q["extrahosts"]
	hc.CgroupParent = q.Get("cgroupparent")
	hc.CpusetCpus, hc.CpusetMems = q.Get("cpusetcpus"), q.Get("cpusetmems")
	hc.SecurityOpt = q["securityopt"]
	for _, f := range []struct {
		key string
		dst *int64
	}{{"memory", &hc.Memory}, {"memswap", &hc.MemorySwap}, {"cpushares", &hc.CPUShares},
		{"cpuquota", &hc.CPUQuota}, {"cpuperiod", &hc.CPUPeriod}, {"shmsize", &hc.ShmSize}} {
		if v := q.Get(f.key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "%s: %q is not a number", f.key, v)
			}
			*f.dst = n
		}
	}
	return nil
}

// registryConfig decodes X-Registry-Config: base64url JSON of credentials
// by registry, keyed by host (docker.io for Docker Hub's legacy keys).
func registryConfig(h string) (map[string]credentials.AuthConfig, error) {
	if h == "" {
		return nil, nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		raw, err = base64.StdEncoding.DecodeString(h)
	}
	var byKey map[string]credentials.AuthConfig
	if err == nil {
		err = json.NewDecoder(bytes.NewReader(raw)).Decode(&byKey)
	}
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid X-Registry-Config header: %v", err)
	}
	out := map[string]credentials.AuthConfig{}
	for k, a := range byKey {
		host := strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		host, _, _ = strings.Cut(host, "/")
		if host == "index.docker.io" || host == "registry-1.docker.io" {
			host = "docker.io"
		}
		out[host] = a
	}
	return out, nil
}

// buildPrune serves `builder prune`: the builder's cache records and
// cache mounts go; the images themselves stay for `image prune`.
func (s *server) buildPrune(w http.ResponseWriter, r *http.Request, _ request) error {
	report, err := s.opts.Build.Prune(r.Context())
	if err != nil {
		return err
	}
	if report.CachesDeleted == nil {
		report.CachesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
