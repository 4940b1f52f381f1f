package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// TestParsePorts follows docker's -p rules: ranges pair up one to one, a
// host range for a single container port is a range to pick from, and a
// single host port for a container range is refused.
func TestParsePorts(t *testing.T) {
	t.Parallel()
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		spec string
		want map[string][]network.PortBinding // "80/tcp" -> bindings
		err  string
	}{
		{spec: "80", want: map[string][]network.PortBinding{"80/tcp": {{}}}},
		{spec: "8080:80", want: map[string][]network.PortBinding{"80/tcp": {{HostPort: "8080"}}}},
		{spec: "127.0.0.1:8080:80/udp", want: map[string][]network.PortBinding{"80/udp": {{HostIP: lo, HostPort: "8080"}}}},
		{spec: "127.0.0.1::80", want: map[string][]network.PortBinding{"80/tcp": {{HostIP: lo}}}},
		{spec: "8000-8001:80-81", want: map[string][]network.PortBinding{"80/tcp": {{HostPort: "8000"}}, "81/tcp": {{HostPort: "8001"}}}},
		{spec: "8000-8010:80", want: map[string][]network.PortBinding{"80/tcp": {{HostPort: "8000-8010"}}}},
		{spec: "80-81", want: map[string][]network.PortBinding{"80/tcp": {{}}, "81/tcp": {{}}}},
		{spec: "8080:80-81", err: "invalid ranges specified for container and host Ports: 80-81 and 8080"},
		{spec: "8000-8002:80-81", err: "invalid ranges specified"},
		{spec: "8080:0", err: "invalid containerPort: 0"},
		{spec: "x:8080:80", err: "invalid IP address: x"},
		{spec: "70000:80", err: "invalid hostPort: 70000"},
	}
	for _, tc := range tests {
		_, got, err := parsePorts(nil, []string{tc.spec})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("-p %s: error %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("-p %s: %v", tc.spec, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("-p %s: %v, want %v", tc.spec, got, tc.want)
			continue
		}
		for p, bs := range got {
			want := tc.want[p.String()]
			if len(want) != len(bs) {
				t.Errorf("-p %s: %s -> %v, want %v", tc.spec, p, bs, want)
				continue
			}
			for i := range bs {
				if bs[i] != want[i] {
					t.Errorf("-p %s: %s -> %+v, want %+v", tc.spec, p, bs[i], want[i])
				}
			}
		}
	}
}
