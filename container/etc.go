package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// etcFiles are the per-container files bound over /etc, and the network
// namespace to join ("" = a new empty one). ready waits for the network
// to be complete.
type etcFiles struct {
	hosts, hostname, resolv, netns string
	ready                          func(context.Context) error
}

func readyNow(context.Context) error { return nil }

// writeEtcFiles writes hostname, hosts and resolv.conf for a container
// without a network sandbox: loopback only.
func (s *Service) writeEtcFiles(rec *Record) (etcFiles, error) {
	dir := s.containerDir(rec.ID)
	f := etcFiles{hosts: filepath.Join(dir, "hosts"), hostname: filepath.Join(dir, "hostname"), resolv: filepath.Join(dir, "resolv.conf"), ready: readyNow}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	for _, h := range rec.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			continue
		}
		hosts += ip + "\t" + name + "\n"
	}
	for path, body := range map[string][]byte{
		f.hosts:    []byte(hosts),
		f.hostname: []byte(rec.Config.Hostname + "\n"),
		f.resolv:   resolvConf(addrStrings(rec.HostConfig.DNS), rec.HostConfig.DNSSearch, rec.HostConfig.DNSOptions),
	} {
		if err := writeFileAtomic(path, body, 0o644); err != nil {
			return f, fmt.Errorf("container %s: %w", rec.ID, err)
		}
	}
	return f, nil
}

// resolvConf is the host's resolv.conf with loopback nameservers dropped
// (they would point at the container itself), or the --dns settings.
func resolvConf(dns, search, options []string) []byte {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var out bytes.Buffer
	var servers, searches, opts []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			searches = append(searches, f[1:]...)
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if len(dns) > 0 {
		servers = dns
	}
	if len(search) > 0 {
		searches = search
	}
	if len(options) > 0 {
		opts = options
	}
	for _, s := range servers {
		fmt.Fprintf(&out, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&out, "search %s\n", strings.Join(searches, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&out, "options %s\n", strings.Join(opts, " "))
	}
	return out.Bytes()
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
