package credentials

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// AuthConfig is what a user presents to a registry: a username and
// password, or an identity (OAuth2 refresh) token, or a registry (bearer)
// token to send as is. It mirrors the Engine API's X-Registry-Auth fields.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
}

// Empty reports whether a holds no credentials at all.
func (a AuthConfig) Empty() bool {
	return a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// EncodeHeader encodes a for the Engine API's X-Registry-Auth header:
// base64url of its JSON, as the Docker CLI sends it.
func EncodeHeader(a AuthConfig) (string, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("registry auth: %w", err)
	}
	return base64.URLEncoding.EncodeToString(data), nil
}

// DecodeHeader decodes an X-Registry-Auth header. Clients differ in the
// alphabet and padding they use, so all four variants are accepted; an
// empty header is anonymous.
func DecodeHeader(h string) (AuthConfig, error) {
	var a AuthConfig
	h = strings.TrimSpace(h)
	if h == "" {
		return a, nil
	}
	var data []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if data, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return a, fmt.Errorf("registry auth header: %w", err)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("registry auth header: %w", err)
	}
	return a, nil
}
