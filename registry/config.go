// Package registry assembles berth's registry server: configuration, the
// /v2/ API, authentication, the token endpoint, metrics, health and access
// logs. It imports nothing of the engine but errdefs and spec libraries.
package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"time"

	"berth/errdefs"
	"berth/registry/server"
	"berth/registry/upstream"
)

// Duration is a time.Duration written as "90s" or "5m" in the config file.
type Duration time.Duration

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: %w", b, errdefs.ErrInvalidArgument)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, errdefs.ErrInvalidArgument)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Config is the registry's configuration file (JSON; see README.md).
type Config struct {
	Addr             string         `json:"addr"`
	Root             string         `json:"root"`
	TLS              TLSConfig      `json:"tls"`
	Auth             AuthConfig     `json:"auth"`
	LogFormat        string         `json:"logFormat"` // text or json
	MaxManifestBytes int64          `json:"maxManifestBytes"`
	UploadTTL        Duration       `json:"uploadTTL"` // abandoned uploads are purged after this
	GC               GCConfig       `json:"gc"`
	Mirrors          []MirrorConfig `json:"mirrors"`
	Storage          StorageConfig  `json:"storage"`
	// Notifications are webhooks told of pushes, pulls and deletes.
	Notifications NotificationsConfig `json:"notifications"`
}

// StorageConfig picks the storage backend: the filesystem under Root, or
// an S3 bucket.
type StorageConfig struct {
	S3 *S3Config `json:"s3"`
}

// S3Config is registry/storage/s3's configuration (see its Config).
type S3Config struct {
	Bucket         string   `json:"bucket"`
	Prefix         string   `json:"prefix"`
	Region         string   `json:"region"`
	Endpoint       string   `json:"endpoint"`
	PathStyle      bool     `json:"pathStyle"`
	AccessKey      string   `json:"accessKey"`
	SecretKey      string   `json:"secretKey"`
	MaxAttempts    int      `json:"maxAttempts"`
	PartSize       int64    `json:"partSize"`
	Redirect       bool     `json:"redirect"`
	RedirectExpiry Duration `json:"redirectExpiry"`
}

// MirrorConfig makes a namespace a pull-through cache of an upstream.
type MirrorConfig struct {
	Namespace string `json:"namespace"` // local namespace of the cache
	URL       string `json:"url"`       // upstream base URL
	// Hosts are the ?ns= values (registry-mirrors clients) that pick this
	// upstream; default: the URL's host, and docker.io for Docker Hub's.
	Hosts              []string `json:"hosts"`
	Default            bool     `json:"default"` // also serve names no local repository has
	Username           string   `json:"username"`
	Password           string   `json:"password"`
	TTL                Duration `json:"ttl"`     // tags are revalidated after this (default 5m)
	Timeout            Duration `json:"timeout"` // connect, response and stall timeout (default 30s)
	InsecureSkipVerify bool     `json:"insecureSkipVerify"`
}

// GCConfig schedules garbage collection inside the server and sets its
// policy (also the defaults of `berth registry gc`).
type GCConfig struct {
	Interval        Duration `json:"interval"` // 0 disables the schedule
	Grace           Duration `json:"grace"`
	DeleteUntagged  bool     `json:"deleteUntagged"`
	DeleteReferrers bool     `json:"deleteReferrers"`
}

// TLSConfig names the certificate and key files; both empty serves HTTP.
type TLSConfig struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// AuthConfig selects the authentication mode.
type AuthConfig struct {
	Mode       string   `json:"mode"`    // none, basic or token
	Realm      string   `json:"realm"`   // token: endpoint URL in challenges; basic: realm name
	Service    string   `json:"service"` // token: audience
	Issuer     string   `json:"issuer"`  // token: issuer
	TokenTTL   Duration `json:"tokenTTL"`
	RefreshTTL Duration `json:"refreshTTL"`
}

// DefaultConfig is the configuration without a file.
func DefaultConfig() Config {
	return Config{
		Addr:      "127.0.0.1:5000",
		Root:      "/var/lib/berth-registry",
		LogFormat: "text",
		Auth:      AuthConfig{Mode: "none", Service: "berth-registry", Issuer: "berth-registry", TokenTTL: Duration(5 * time.Minute)},
		UploadTTL: Duration(24 * time.Hour),
		GC:        GCConfig{Interval: Duration(24 * time.Hour), Grace: Duration(time.Hour)},
	}
}

// LoadConfig reads a JSON config file over the defaults. Unknown fields are
// errors, so a misspelt option does not silently do nothing.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("registry config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("registry config %s: %w: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return cfg, cfg.Validate()
}

// Validate checks the enumerated fields.
func (c Config) Validate() error {
	switch c.Auth.Mode {
	case "none", "basic", "token":
	default:
		return fmt.Errorf("auth mode %q: want none, basic or token: %w", c.Auth.Mode, errdefs.ErrInvalidArgument)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log format %q: want text or json: %w", c.LogFormat, errdefs.ErrInvalidArgument)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("tls: cert and key go together: %w", errdefs.ErrInvalidArgument)
	}
	if c.GC.Interval < 0 || c.GC.Grace < 0 {
		return fmt.Errorf("gc: negative interval or grace: %w", errdefs.ErrInvalidArgument)
	}
	if c.GC.Interval > 0 && c.GC.Interval < Duration(time.Minute) {
		return fmt.Errorf("gc interval %s: at least 1m: %w", c.GC.Interval, errdefs.ErrInvalidArgument)
	}
	if s3 := c.Storage.S3; s3 != nil && s3.Bucket == "" {
		return fmt.Errorf("storage.s3.bucket required: %w", errdefs.ErrInvalidArgument)
	}
	if err := c.notifyConfig().Validate(); err != nil {
		return err
	}
	return validateMirrors(c.Mirrors)
}

var namespaceRe = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)

func validateMirrors(ms []MirrorConfig) error {
	seen, defaults := map[string]bool{}, 0
	for _, m := range ms {
		if !namespaceRe.MatchString(m.Namespace) || seen[m.Namespace] {
			return fmt.Errorf("mirror namespace %q: want a unique lowercase name component: %w", m.Namespace, errdefs.ErrInvalidArgument)
		}
		seen[m.Namespace] = true
		if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("mirror %s: url %q: want http(s)://host[:port]: %w", m.Namespace, m.URL, errdefs.ErrInvalidArgument)
		}
		if m.Default {
			defaults++
		}
		if m.TTL < 0 || m.Timeout < 0 {
			return fmt.Errorf("mirror %s: negative ttl or timeout: %w", m.Namespace, errdefs.ErrInvalidArgument)
		}
	}
	if defaults > 1 {
		return fmt.Errorf("mirrors: at most one default: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// GCOptions are the collection options the configuration sets.
func (c Config) GCOptions(log *slog.Logger) server.GCOptions {
	return server.GCOptions{Grace: time.Duration(c.GC.Grace), DeleteUntagged: c.GC.DeleteUntagged,
		DeleteReferrers: c.GC.DeleteReferrers, Log: log}
}

// mirrors builds the configured upstream clients.
func (c Config) mirrors(log *slog.Logger) ([]server.Mirror, error) {
	var out []server.Mirror
	for _, m := range c.Mirrors {
		client, err := upstream.New(upstream.Config{URL: m.URL, Username: m.Username, Password: m.Password,
			Timeout: time.Duration(m.Timeout), InsecureSkipVerify: m.InsecureSkipVerify}, log)
		if err != nil {
			return nil, err
		}
		hosts := m.Hosts
		if len(hosts) == 0 {
			hosts = []string{client.Host()}
			if client.Host() == "registry-1.docker.io" {
				hosts = append(hosts, "docker.io")
			}
		}
		out = append(out, server.Mirror{Namespace: m.Namespace, Hosts: hosts, Default: m.Default, TTL: time.Duration(m.TTL), Upstream: client})
	}
	return out, nil
}
