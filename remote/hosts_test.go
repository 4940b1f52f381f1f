package remote

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/remote/credentials"
)

func TestIsInsecure(t *testing.T) {
	t.Parallel()
	c := New(Options{Insecure: []string{"reg.example:5000", "10.1.0.0/16", "plain.example"}})
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:5000", true},
		{"127.9.9.9", true},
		{"[::1]:5000", true},
		{"localhost:5000", true},
		{"reg.example:5000", true},
		{"reg.example:5001", false},
		{"plain.example:443", true},
		{"10.1.2.3:5000", true},
		{"10.2.0.1:5000", false},
		{"registry-1.docker.io", false},
	}
	for _, tt := range tests {
		if got := c.isInsecure(tt.host); got != tt.want {
			t.Errorf("isInsecure(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		if got, ok := retryAfter(tt.in, now); got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v", tt.in, got, ok)
		}
	}
}

// certPair is a PEM certificate and key signed by parent (self-signed when
// parent is nil).
type certPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

func newCert(t *testing.T, name string, parent *certPair, tmpl *x509.Certificate) *certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &certPair{cert: cert, key: key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
}

// TestCertsDir checks verified TLS with a per-host CA and a client
// certificate from CertsDir, as Docker's certs.d does.
func TestCertsDir(t *testing.T) {
	t.Parallel()
	ca := newCert(t, "berth test CA", nil, &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	server := newCert(t, "127.0.0.1", ca, &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	client := newCert(t, "client", ca, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	serverPair, err := tls.X509KeyPair(server.certPEM, server.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")

	get := func(certsDir string) error {
		c := New(Options{CertsDir: certsDir})
		conf, err := c.tlsConfig(host, false)
		if err != nil {
			return err
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
		resp, err := hc.Get(srv.URL + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	dir := t.TempDir()
	hostDir := filepath.Join(dir, host)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := get(dir); err == nil {
		t.Fatal("unknown CA accepted")
	}
	if err := os.WriteFile(filepath.Join(hostDir, "ca.crt"), ca.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := get(dir); err == nil {
		t.Fatal("server requiring a client certificate accepted a client without one")
	}
	if err := os.WriteFile(filepath.Join(hostDir, "client.cert"), client.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "client.key"), client.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := get(dir); err != nil {
		t.Fatalf("with CA and client certificate: %v", err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "bad.crt"), []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := get(dir); err == nil {
		t.Fatal("a corrupt CA file was ignored")
	}
}

func TestForRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server, host string
		match        bool
	}{
		{"https://index.docker.io/v1/", "docker.io", true},
		{"", "localhost:5000", true},
		{"localhost:5000", "localhost:5000", true},
		{"http://localhost:5000/", "localhost:5000", true},
		{"localhost:5000", "docker.io", false},
		{"docker.io", "evil.example", false},
	}
	for _, tt := range tests {
		got, err := ForRegistry(credentials.AuthConfig{Username: "u", ServerAddress: tt.server})(context.Background(), tt.host)
		if err != nil || (got.Username == "u") != tt.match {
			t.Errorf("ForRegistry(%q)(%q) = %+v, %v", tt.server, tt.host, got, err)
		}
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	c := New(Options{Mirrors: []string{"https://mirror.example", "127.0.0.1:5001"}})
	tests := []struct {
		domain string
		pull   bool
		want   []string
	}{
		{"docker.io", true, []string{"https://mirror.example/v2/", "https://127.0.0.1:5001/v2/", "https://registry-1.docker.io/v2/"}},
		{"docker.io", false, []string{"https://registry-1.docker.io/v2/"}},
		{"quay.example", true, []string{"https://mirror.example/v2/?ns=quay.example", "https://127.0.0.1:5001/v2/?ns=quay.example", "https://quay.example/v2/"}},
	}
	for _, tt := range tests {
		var got []string
		for _, ep := range c.endpoints(tt.domain, tt.pull) {
			got = append(got, ep.url("/v2/").String())
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("endpoints(%s, pull=%v) = %v, want %v", tt.domain, tt.pull, got, tt.want)
		}
	}
	for in, want := range map[string]string{"https://index.docker.io/v1/": "docker.io", "registry-1.docker.io": "docker.io", "Reg.Example:5000/": "reg.example:5000"} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
