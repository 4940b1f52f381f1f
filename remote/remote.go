// Package remote is berth's registry client: it resolves references to
// manifests, fetches and pushes blobs and manifests, lists tags and logs in,
// speaking the OCI distribution API (and Docker's registry v2 dialect of it).
//
// A Client is long-lived: it owns the HTTP transports (one per registry host,
// with that host's CA and client certificates from CertsDir), the learned
// authentication challenges and the token cache. A Session binds a Client to
// the credentials of one caller (the daemon builds one per API request from
// its X-Registry-Auth header), so tokens obtained for one user are never
// handed to another: cached tokens are keyed by host, scope and a hash of the
// credentials.
//
// Typical use, a pull:
//
//	c := remote.New(remote.Options{Insecure: cfg.InsecureRegistries})   // once
//	s := c.Session(remote.ForRegistry(authFromHeader))                   // per request
//	res, err := s.Resolve(ctx, ref, platform)                            // manifest, verified
//	rc, err := s.FetchBlob(ctx, res.Ref, res.Parsed.Layers[i], offset)   // resumable stream
//
// and a push: BlobExists, else MountBlob from a repository known to hold
// the blob, else PushBlob; then PushManifest.
//
// Certificates are read from
//
//	<CertsDir>/<host[:port]>/*.crt            extra root CAs
//	<CertsDir>/<host[:port]>/<name>.cert      client certificate ...
//	<CertsDir>/<host[:port]>/<name>.key       ... and its key
//
// the layout Docker uses under /etc/docker/certs.d.
//
// Digest verification of blob content is the caller's job (it hashes while
// writing into the content store), or VerifyReader does it; manifests are
// verified here.
package remote

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"berth/remote/credentials"
)

// DefaultCertsDir is where per-registry certificates live unless
// Options.CertsDir says otherwise.
const DefaultCertsDir = "/etc/berth/certs.d"

// Options configures a Client.
type Options struct {
	// Insecure lists registries reached without verified TLS: host[:port]
	// entries or CIDRs matched against the host's IP. Such registries are
	// tried over HTTPS without certificate checks, then over plain HTTP.
	// Loopback (127.0.0.0/8, ::1, localhost) is always insecure, as in Docker.
	Insecure []string
	// Mirrors are tried first, in order, for pulls from every registry; a
	// mirror that fails (error, 404, 5xx) falls back to the next and finally
	// to the origin. Entries are URLs ("https://m.example") or host[:port].
	// Pushes never go to mirrors.
	Mirrors []string
	// CertsDir holds per-host certificates; DefaultCertsDir when empty.
	CertsDir string
	// UserAgent is sent on every request.
	UserAgent string
	// Logger receives debug events (fallbacks, retries); discarded if nil.
	Logger *slog.Logger
	// Transport replaces the per-host transports, for tests.
	Transport http.RoundTripper
	// MaxRetries bounds retries of transient failures (connection errors,
	// 429, 502, 503, 504) per request; 0 means 4. Negative disables retries.
	MaxRetries int
	// RetryBackoff is the first retry delay, doubled each time up to 30 s;
	// 0 means 500 ms.
	RetryBackoff time.Duration
	// ChunkSize, when positive, uploads blobs in PATCH chunks of this many
	// bytes; otherwise one streamed PATCH carries the whole blob.
	ChunkSize int64
}

// Credentials returns the credentials to present to a registry. host is the
// registry's name as it appears in references ("docker.io",
// "localhost:5000"), never an API or mirror host. A zero AuthConfig means
// anonymous.
type Credentials func(ctx context.Context, host string) (credentials.AuthConfig, error)

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts        Options
	log         *slog.Logger
	tokens      *tokenCache
	tokenFlight singleflight.Group

	mu         sync.Mutex
	clients    map[string]*http.Client // per host and TLS mode
	challenges map[string]challenge    // per API host
	plainHTTP  map[string]bool         // insecure hosts found to speak only HTTP
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.CertsDir == "" {
		opts.CertsDir = DefaultCertsDir
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 4
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 500 * time.Millisecond
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berth"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Client{
		opts:       opts,
		log:        log,
		tokens:     newTokenCache(),
		clients:    map[string]*http.Client{},
		challenges: map[string]challenge{},
		plainHTTP:  map[string]bool{},
	}
}

// Session binds the client to one caller's credentials. creds may be nil
// for anonymous access. Sessions are cheap; make one per request.
func (c *Client) Session(creds Credentials) *Session {
	return &Session{c: c, creds: creds}
}

// Session performs registry operations with one caller's credentials.
type Session struct {
	c     *Client
	creds Credentials
}

func (s *Session) authFor(ctx context.Context, host string) (credentials.AuthConfig, error) {
	if s.creds == nil {
		return credentials.AuthConfig{}, nil
	}
	return s.creds(ctx, host)
}

// ForRegistry returns Credentials that present a to the registry it names
// (a.ServerAddress, in any spelling `login` accepts) and to no other; with
// no ServerAddress, a goes to every registry, as Docker does with an
// X-Registry-Auth header that names none.
func ForRegistry(a credentials.AuthConfig) Credentials {
	return func(_ context.Context, host string) (credentials.AuthConfig, error) {
		if a.ServerAddress == "" || normalizeHost(a.ServerAddress) == normalizeHost(host) {
			return a, nil
		}
		return credentials.AuthConfig{}, nil
	}
}
