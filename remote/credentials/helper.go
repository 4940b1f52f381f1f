package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// notFoundMessage is how helpers say they hold nothing for a server.
const notFoundMessage = "credentials not found in native keychain"

// tokenUsername marks a helper entry whose secret is an identity token.
const tokenUsername = "<token>"

// Helper runs docker-credential-<suffix> from PATH.
type Helper struct {
	program string
}

// NewHelper returns the helper for suffix ("pass", "secretservice", ...).
func NewHelper(suffix string) Helper { return Helper{program: "docker-credential-" + suffix} }

type helperCreds struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// run executes one helper action with input on stdin and returns stdout.
// A helper reports errors as a message on stdout and a non-zero exit.
func (h Helper) run(ctx context.Context, action string, input []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.program, action)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if strings.Contains(msg, notFoundMessage) {
			return nil, fmt.Errorf("%s %s: %w", h.program, action, ErrNotFound)
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s %s: %s", h.program, action, msg)
	}
	return stdout.Bytes(), nil
}

// Get returns the credentials the helper holds for server.
func (h Helper) Get(ctx context.Context, server string) (AuthConfig, error) {
	out, err := h.run(ctx, "get", []byte(server))
	if err != nil {
		return AuthConfig{}, err
	}
	var c helperCreds
	if err := json.Unmarshal(out, &c); err != nil {
		return AuthConfig{}, fmt.Errorf("%s get: decode: %w", h.program, err)
	}
	a := AuthConfig{ServerAddress: server}
	if c.Username == tokenUsername {
		a.IdentityToken = c.Secret
	} else {
		a.Username, a.Password = c.Username, c.Secret
	}
	return a, nil
}

// Store hands the helper a's credentials for server.
func (h Helper) Store(ctx context.Context, server string, a AuthConfig) error {
	c := helperCreds{ServerURL: server, Username: a.Username, Secret: a.Password}
	if a.IdentityToken != "" {
		c.Username, c.Secret = tokenUsername, a.IdentityToken
	}
	in, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("%s store: %w", h.program, err)
	}
	_, err = h.run(ctx, "store", in)
	return err
}

// Erase removes what the helper holds for server.
func (h Helper) Erase(ctx context.Context, server string) error {
	_, err := h.run(ctx, "erase", []byte(server))
	return err
}

// List returns the helper's servers and their usernames.
func (h Helper) List(ctx context.Context) (map[string]string, error) {
	out, err := h.run(ctx, "list", nil)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("%s list: decode: %w", h.program, err)
	}
	return m, nil
}
