// Package credentials reads and writes the Docker CLI's client
// configuration (config.json) and talks to credential helpers, for the CLI
// side of `login`, `logout`, `pull` and `push`. It depends only on the
// standard library so the CLI can import it.
//
// Layout of $DOCKER_CONFIG/config.json (default ~/.docker/config.json):
//
//	{
//	  "auths": {
//	    "https://index.docker.io/v1/": {"auth": base64("user:pass")},
//	    "localhost:5000": {"auth": "...", "identitytoken": "..."}
//	  },
//	  "credsStore": "<suffix>",            // docker-credential-<suffix> for all
//	  "credHelpers": {"host": "<suffix>"}  // per-registry helper
//	}
//
// Keys other than these are kept as they were when the file is saved.
package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DockerHubKey is the key config.json and credential helpers use for
// Docker Hub.
const DockerHubKey = "https://index.docker.io/v1/"

// ErrNotFound is returned by Get when no credentials are stored for a
// registry.
var ErrNotFound = errors.New("credentials not found")

// Dir returns the client configuration directory: $DOCKER_CONFIG, else
// ~/.docker.
func Dir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// authEntry is one "auths" value.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	// Old files may carry these unencoded.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Config is a loaded config.json.
type Config struct {
	path        string
	raw         map[string]json.RawMessage
	auths       map[string]authEntry
	CredsStore  string
	CredHelpers map[string]string
}

// Load reads dir/config.json; a missing file is an empty configuration.
func Load(dir string) (*Config, error) {
	c := &Config{path: filepath.Join(dir, "config.json"), raw: map[string]json.RawMessage{},
		auths: map[string]authEntry{}, CredHelpers: map[string]string{}}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("client config %s: %w", c.path, err)
	}
	for key, dst := range map[string]any{"auths": &c.auths, "credsStore": &c.CredsStore, "credHelpers": &c.CredHelpers} {
		if v, ok := c.raw[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("client config %s: %s: %w", c.path, key, err)
			}
		}
	}
	if c.auths == nil {
		c.auths = map[string]authEntry{}
	}
	if c.CredHelpers == nil {
		c.CredHelpers = map[string]string{}
	}
	return c, nil
}

// Save writes the configuration back atomically (temp file, fsync,
// rename), mode 0600, keeping keys berth does not know.
func (c *Config) Save() error {
	for key, v := range map[string]any{"auths": c.auths, "credsStore": c.CredsStore, "credHelpers": c.CredHelpers} {
		if isEmpty(v) {
			delete(c.raw, key)
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("client config: %w", err)
		}
		c.raw[key] = data
	}
	data, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	return writeFileAtomic(c.path, append(data, '\n'))
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case map[string]authEntry:
		return len(v) == 0
	case map[string]string:
		return len(v) == 0
	}
	return false
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config.json.*")
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("client config %s: %w", path, err)
	}
	return nil
}

// ServerKey turns a registry as users write it into the key credentials
// are stored under: Docker Hub in any spelling becomes DockerHubKey, other
// registries their host[:port].
func ServerKey(server string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	switch strings.ToLower(host) {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHubKey
	}
	return strings.ToLower(host)
}

// helperFor names the helper in charge of key, or "" for the file itself.
func (c *Config) helperFor(key string) string {
	if h, ok := c.CredHelpers[key]; ok {
		return h
	}
	return c.CredsStore
}

// Get returns the credentials stored for server, from its credential
// helper or from "auths". It returns ErrNotFound when there are none.
func (c *Config) Get(ctx context.Context, server string) (AuthConfig, error) {
	key := ServerKey(server)
	if h := c.helperFor(key); h != "" {
		return NewHelper(h).Get(ctx, key)
	}
	for k, e := range c.auths {
		if ServerKey(k) == key {
			return decodeEntry(key, e)
		}
	}
	return AuthConfig{}, fmt.Errorf("%s: %w", key, ErrNotFound)
}

func decodeEntry(key string, e authEntry) (AuthConfig, error) {
	a := AuthConfig{ServerAddress: key, Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return AuthConfig{}, fmt.Errorf("credentials for %s: auth: %w", key, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return AuthConfig{}, fmt.Errorf("credentials for %s: auth is not user:password", key)
		}
		a.Username, a.Password = user, pass
	}
	return a, nil
}

// Store saves a for server in its credential helper, or in "auths" (then
// call Save). An identity token is stored in place of the password.
func (c *Config) Store(ctx context.Context, server string, a AuthConfig) error {
	key := ServerKey(server)
	if h := c.helperFor(key); h != "" {
		if err := NewHelper(h).Store(ctx, key, a); err != nil {
			return err
		}
		// Docker leaves an empty entry so `docker info` shows the login.
		c.auths[key] = authEntry{}
		return nil
	}
	e := authEntry{IdentityToken: a.IdentityToken}
	if a.IdentityToken != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":"))
	} else {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
	}
	c.auths[key] = e
	return nil
}

// Erase forgets server's credentials (then call Save). Erasing what is
// not stored is not an error.
func (c *Config) Erase(ctx context.Context, server string) error {
	key := ServerKey(server)
	if h := c.helperFor(key); h != "" {
		if err := NewHelper(h).Erase(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	for k := range c.auths {
		if ServerKey(k) == key {
			delete(c.auths, k)
		}
	}
	return nil
}
