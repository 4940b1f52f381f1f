package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"berth/errdefs"
	"berth/image"
	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DistributionBackend pulls and pushes images. Progress callbacks come one
// at a time; an error before the first one is a plain HTTP error.
type DistributionBackend interface {
	PullImage(ctx context.Context, name string, opts image.PullOptions, progress image.ProgressFunc) error
	PushImage(ctx context.Context, name string, opts image.PushOptions, progress image.ProgressFunc) error
	DistributionInspect(ctx context.Context, name string, auth credentials.AuthConfig) (registry.DistributionInspect, error)
}

// AuthBackend checks credentials against a registry for /auth and returns
// the identity token to store instead of the password, if the registry
// hands one out.
type AuthBackend interface {
	Login(ctx context.Context, server string, auth credentials.AuthConfig) (string, error)
}

func (s *server) addRegistryRoutes() {
	s.handle(http.MethodPost, "/images/{name}/push", s.pushImage)
	s.handle(http.MethodPost, "/auth", s.login)
	s.handle(http.MethodGet, "/distribution/{name}/json", s.distributionInspect)
}

// registryAuth decodes X-Registry-Auth.
func registryAuth(r *http.Request) (credentials.AuthConfig, error) {
	a, err := credentials.DecodeHeader(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return a, nil
}

// progressStream writes progress as a JSON-message stream. The status line
// goes out with the first message, as dockerd does, so a failure before
// any progress is still an HTTP error with its own status.
type progressStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

func (p *progressStream) send(pr image.Progress) {
	m := streamMessage{Message: jsonstream.Message{ID: pr.ID, Status: pr.Status}}
	if pr.ID != "" && !pr.Message {
		// Always present on layer lines (possibly {}): the docker CLI
		// redraws a line in place only for messages that carry it.
		m.Progress = &jsonstream.Progress{Current: pr.Current, Total: pr.Total}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.write(m); err != nil {
		return // the client left; its request context ends the work
	}
	if pr.Aux != nil {
		raw, err := json.Marshal(pr.Aux)
		if err != nil {
			return
		}
		aux := json.RawMessage(raw)
		p.write(streamMessage{Message: jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &aux}})
	}
}

func (p *progressStream) write(m streamMessage) error {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
	return writeStream(p.w, m)
}

// pullImage serves POST /images/create?fromImage=: a tag or digest in
// "tag" (or in fromImage itself); neither pulls every tag.
func (s *server) pullImage(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	if s.opts.Distribution == nil {
		return fmt.Errorf("pull %s: pulling from a registry is not available in this daemon: %w", q.Get("fromImage"), errdefs.ErrNotImplemented)
	}
	name, all, err := pullReference(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	platform, err := platformParam(q.Get("platform"))
	if err != nil {
		return err
	}
	ps := &progressStream{w: w}
	return s.opts.Distribution.PullImage(r.Context(), name, image.PullOptions{Platform: platform, AllTags: all, Auth: auth}, ps.send)
}

func pullReference(from, tag string) (string, bool, error) {
	if from == "" {
		return "", false, fmt.Errorf("fromImage is required: %w", errdefs.ErrInvalidArgument)
	}
	if tag != "" {
		sep := ":"
		if strings.Contains(tag, ":") {
			sep = "@" // a digest
		}
		return from + sep + tag, false, nil
	}
	named, err := reference.ParseNormalizedNamed(from)
	if err != nil {
		return "", false, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return from, reference.IsNameOnly(named), nil
}

// platformParam accepts "os/arch[/variant]" and, as API 1.46+ clients
// send it, the JSON form of an OCI platform.
func platformParam(v string) (string, error) {
	if !strings.HasPrefix(v, "{") {
		return v, nil
	}
	var p ocispec.Platform
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return "", fmt.Errorf("invalid platform %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s, nil
}

// pushImage serves POST /images/{name}/push?tag=; no tag pushes every
// local tag of the repository.
func (s *server) pushImage(w http.ResponseWriter, r *http.Request, req request) error {
	if s.opts.Distribution == nil {
		return fmt.Errorf("push %s: pushing to a registry is not available in this daemon: %w", req.name, errdefs.ErrNotImplemented)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	tag := r.URL.Query().Get("tag")
	all := false
	if tag == "" {
		named, err := reference.ParseNormalizedNamed(req.name)
		if err != nil {
			return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		all = reference.IsNameOnly(named)
	}
	ps := &progressStream{w: w}
	return s.opts.Distribution.PushImage(r.Context(), req.name, image.PushOptions{Tag: tag, AllTags: all, Auth: auth}, ps.send)
}

// login serves POST /auth: the body is the client's AuthConfig.
func (s *server) login(w http.ResponseWriter, r *http.Request, _ request) error {
	if s.opts.Auth == nil {
		return fmt.Errorf("login: %w", errdefs.ErrNotImplemented)
	}
	var body registry.AuthConfig
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		return fmt.Errorf("login: decode request: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	a := credentials.AuthConfig{Username: body.Username, Password: body.Password, IdentityToken: body.IdentityToken,
		RegistryToken: body.RegistryToken, ServerAddress: body.ServerAddress}
	if a.Username == "" && body.Auth != "" {
		user, pass, err := decodeBasic(body.Auth)
		if err != nil {
			return err
		}
		a.Username, a.Password = user, pass
	}
	server := a.ServerAddress
	if server == "" {
		server = credentials.DockerHubKey
	}
	token, err := s.opts.Auth.Login(r.Context(), server, a)
	if err != nil {
		if errors.Is(err, errdefs.ErrUnauthenticated) {
			// dockerd's wording, which scripts look for.
			s.log.DebugContext(r.Context(), "login refused", "server", server, "err", err)
			return errdefs.Errorf(errdefs.ErrUnauthenticated, "login attempt to %s failed with status: 401 Unauthorized", loginURL(server))
		}
		return err
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
	return nil
}

// loginURL is the endpoint dockerd names in a refused login. Loopback
// registries are reached over plain HTTP when they do not speak TLS, and
// in practice they do not.
func loginURL(server string) string {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	host, _, _ = strings.Cut(host, "/")
	if host == "index.docker.io" || host == "docker.io" {
		host = "registry-1.docker.io"
	}
	scheme := "https://"
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	if ip := net.ParseIP(strings.Trim(name, "[]")); name == "localhost" || (ip != nil && ip.IsLoopback()) {
		scheme = "http://"
	}
	return scheme + host + "/v2/"
}

func decodeBasic(auth string) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(auth)
	if err != nil {
		raw, err = base64.URLEncoding.DecodeString(auth)
	}
	if err != nil {
		return "", "", fmt.Errorf("login: auth field: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("login: auth field is not user:password: %w", errdefs.ErrInvalidArgument)
	}
	return user, pass, nil
}

// distributionInspect serves GET /distribution/{name}/json.
func (s *server) distributionInspect(w http.ResponseWriter, r *http.Request, req request) error {
	if s.opts.Distribution == nil {
		return fmt.Errorf("distribution inspect: %w", errdefs.ErrNotImplemented)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	di, err := s.opts.Distribution.DistributionInspect(r.Context(), req.name, auth)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, di)
	return nil
}
