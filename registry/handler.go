package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/notify"
	"berth/registry/server"
	"berth/registry/storage"
	"berth/registry/ui"
)

// NewHandler builds the registry's HTTP handler over d: /v2/ (the API),
// /api/v1/ (repository deletion, garbage collection), /ui/ (the web UI), /token (token mode),
// /metrics and /healthz, all access-logged to log; and webhook
// notifications when configured, until Close.
func NewHandler(ctx context.Context, cfg Config, d storage.Driver, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	accounts := auth.NewAccounts(d)
	mux := http.NewServeMux()
	var authz auth.Authorizer
	switch cfg.Auth.Mode {
	case "basic":
		realm := cfg.Auth.Realm
		if realm == "" {
			realm = "berth-registry"
		}
		authz = &auth.Basic{Accounts: accounts, Realm: realm}
	case "token":
		tokens, err := auth.NewTokens(ctx, d, accounts, auth.TokenConfig{
			Realm: cfg.Auth.Realm, Service: cfg.Auth.Service, Issuer: cfg.Auth.Issuer,
			TTL: time.Duration(cfg.Auth.TokenTTL), RefreshTTL: time.Duration(cfg.Auth.RefreshTTL),
		})
		if err != nil {
			return nil, err
		}
		authz = tokens
		mux.Handle("/token", tokens)
	}
	mirrors, err := cfg.mirrors(log)
	if err != nil {
		return nil, err
	}
	notifier, events, err := cfg.notifier(log)
	if err != nil {
		return nil, err
	}
	api := server.New(server.Options{Storage: d, Authorizer: authz, Log: log, MaxManifestSize: cfg.MaxManifestBytes, Mirrors: mirrors,
		Events: events})
	m := newMetrics(notifier)
	mux.Handle("/v2/", api)
	mux.Handle("/v2", api)
	mux.Handle("/api/v1/", api.NewAdmin(cfg.GCOptions(log)))
	mux.Handle("GET /metrics", m)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { health(w, r, d) })
	web, err := ui.New(ctx, ui.Options{Storage: d, Accounts: accounts, Open: cfg.Auth.Mode == "none", Log: log, MaxManifestSize: cfg.MaxManifestBytes,
		Events: events})
	if err != nil {
		return nil, err
	}
	mux.Handle("/ui/", web)
	mux.Handle("/ui", web)
	return &Handler{Handler: accessLog(mux, m, log), notifier: notifier}, nil
}

// Handler is the registry's HTTP handler. Close stops its background work.
type Handler struct {
	http.Handler
	notifier *notify.Notifier
}

// Close delivers the queued webhook notifications until ctx ends and stops
// their delivery; call it after the HTTP server has drained.
func (h *Handler) Close(ctx context.Context) error {
	if h.notifier == nil {
		return nil
	}
	return h.notifier.Close(ctx)
}

// health answers 200 when storage responds, 503 otherwise.
func health(w http.ResponseWriter, r *http.Request, d storage.Driver) {
	_, err := d.Stat(r.Context(), "repositories")
	w.Header().Set("Content-Type", "application/json")
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "{\"status\":\"unavailable\",\"error\":%q}\n", err.Error())
		return
	}
	io.WriteString(w, "{\"status\":\"ok\"}\n")
}

// recorder captures the status and body size of a response; it forwards
// ReadFrom so blob bodies still go out by sendfile.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// accessLog logs one structured line per request and feeds the metrics.
func accessLog(next http.Handler, m *metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inflight.Add(1)
		defer m.inflight.Add(-1)
		rec := &recorder{ResponseWriter: w}
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := server.RouteKind(r.URL.Path)
		switch r.URL.Path {
		case "/token", "/metrics", "/healthz":
			route = r.URL.Path[1:]
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			route = "api"
		}
		dur := time.Since(start)
		m.observe(r.Method, route, rec.status, dur)
		m.bytesIn.Add(uint64(body.n))
		m.bytesOut.Add(uint64(rec.n))
		user, _, _ := r.BasicAuth()
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", rec.status), slog.Int64("bytes_in", body.n), slog.Int64("bytes_out", rec.n),
			slog.Duration("duration", dur), slog.String("remote", r.RemoteAddr), slog.String("user", user),
			slog.String("user_agent", r.UserAgent()))
	})
}
