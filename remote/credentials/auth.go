package credentials

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
