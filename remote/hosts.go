package remote

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"berth/errdefs"
)

// DockerHub is the reference domain of Docker Hub and dockerHubAPI the host
// that serves its registry API.
const (
	DockerHub    = "docker.io"
	dockerHubAPI = "registry-1.docker.io"
)

// endpoint is one place a registry API can be reached.
type endpoint struct {
	origin string // reference domain, used for credentials and ?ns=
	host   string // API host[:port]
	scheme string // "https" or "http"
	mirror bool
	// insecure: skip TLS verification, and fall back to http on failure.
	insecure bool
}

func (e endpoint) url(path string) *url.URL {
	u := &url.URL{Scheme: e.scheme, Host: e.host, Path: path}
	if e.mirror && e.origin != DockerHub {
		// containerd's convention: tell a mirror which upstream is meant.
		u.RawQuery = url.Values{"ns": {e.origin}}.Encode()
	}
	return u
}

// apiHost maps a reference domain to the host that serves its API.
func apiHost(domain string) string {
	switch domain {
	case DockerHub, "index.docker.io":
		return dockerHubAPI
	}
	return domain
}

// normalizeHost turns what users type at `login` ("https://index.docker.io/v1/",
// "registry-1.docker.io", "localhost:5000/") into a reference domain.
func normalizeHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "", "index.docker.io", dockerHubAPI:
		return DockerHub
	}
	return strings.ToLower(s)
}

// endpoints lists where to send a request for domain: mirrors first when
// pulling, then the origin.
func (c *Client) endpoints(domain string, pull bool) []endpoint {
	var eps []endpoint
	if pull {
		for _, m := range c.opts.Mirrors {
			scheme, host := "https", m
			if u, err := url.Parse(m); err == nil && u.Host != "" {
				scheme, host = u.Scheme, u.Host
			}
			eps = append(eps, c.endpointFor(domain, host, scheme, true))
		}
	}
	return append(eps, c.endpointFor(domain, apiHost(domain), "https", false))
}

func (c *Client) endpointFor(origin, host, scheme string, mirror bool) endpoint {
	ep := endpoint{origin: origin, host: host, scheme: scheme, mirror: mirror}
	if c.isInsecure(host) {
		ep.insecure = true
		c.mu.Lock()
		if c.plainHTTP[host] {
			ep.scheme = "http"
		}
		c.mu.Unlock()
	}
	return ep
}

func (c *Client) isInsecure(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, entry := range c.opts.Insecure {
		if _, cidr, err := net.ParseCIDR(entry); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		if strings.EqualFold(entry, hostport) || strings.EqualFold(entry, host) {
			return true
		}
	}
	return false
}

// httpClient returns the client for host in the given TLS mode, building its
// transport from CertsDir on first use.
func (c *Client) httpClient(ep endpoint) (*http.Client, error) {
	key := ep.host
	if ep.insecure {
		key += "#insecure"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.clients[key]; ok {
		return hc, nil
	}
	rt := c.opts.Transport
	if rt == nil {
		tlsConf, err := c.tlsConfig(ep.host, ep.insecure)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsConf
		tr.ResponseHeaderTimeout = 2 * time.Minute
		tr.MaxIdleConnsPerHost = 8
		rt = tr
	}
	hc := &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	c.clients[key] = hc
	return hc, nil
}

// checkRedirect keeps credentials on the registry host: a redirect to a
// blob store (presigned S3 URL) carries its own authorisation, and must not
// learn the registry token.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("redirect %s: stopped after 10 redirects: %w", req.URL.Redacted(), errdefs.ErrUnavailable)
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

func (c *Client) tlsConfig(host string, insecure bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} // only hosts the operator marked insecure, or loopback
	dir := filepath.Join(c.opts.CertsDir, host)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return conf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certs dir %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".crt"):
			pem, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("ca %s: %w", name, err)
			}
			if conf.RootCAs == nil {
				if conf.RootCAs, err = x509.SystemCertPool(); err != nil {
					conf.RootCAs = x509.NewCertPool()
				}
			}
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca %s: no certificates: %w", filepath.Join(dir, name), errdefs.ErrInvalidArgument)
			}
		case strings.HasSuffix(name, ".cert"):
			keyName := strings.TrimSuffix(name, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name), filepath.Join(dir, keyName))
			if err != nil {
				return nil, fmt.Errorf("client certificate %s: %w", filepath.Join(dir, name), err)
			}
			conf.Certificates = append(conf.Certificates, pair)
		}
	}
	return conf, nil
}
