package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNetworking follows docker's --network rules: the advanced form,
// repeats, the standalone flags going to the first network, conflicts.
func TestNetworking(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		networks []string
		opts     createOptions
		mode     string
		want     string // EndpointsConfig as JSON, fields that matter
		err      string
	}{
		{name: "none given", mode: "", want: `{"default":{}}`},
		{name: "plain name", networks: []string{"front"}, mode: "front", want: `{}`},
		{name: "standalone alias", networks: []string{"front"}, opts: createOptions{aliases: []string{"www"}}, mode: "front",
			want: `{"front":{"Aliases":["www"]}}`},
		{name: "advanced", networks: []string{"name=front,alias=a,alias=b,ip=172.20.0.5,driver-opt=k=v,gw-priority=3"}, mode: "front",
			want: `{"front":{"Aliases":["a","b"],"DriverOpts":{"k":"v"},"GwPriority":3,"IPAMConfig":{"IPv4Address":"172.20.0.5"}}}`},
		{name: "two networks", networks: []string{"front", "name=back,alias=db"}, opts: createOptions{ip: "172.20.0.9"}, mode: "front",
			want: `{"back":{"Aliases":["db"]},"front":{"IPAMConfig":{"IPv4Address":"172.20.0.9"}}}`},
		{name: "mac", networks: []string{"name=front,mac-address=02:42:ac:11:00:09"}, mode: "front",
			want: `{"front":{"MacAddress":"02:42:ac:11:00:09"}}`},
		{name: "twice", networks: []string{"front", "front"}, err: `network "front" is specified multiple times`},
		{name: "mixed kinds", networks: []string{"bridge", "front"}, err: "cannot attach both user-defined and non-user-defined network-modes"},
		{name: "alias both ways", networks: []string{"name=front,alias=a"}, opts: createOptions{aliases: []string{"b"}},
			err: "conflicting options: cannot specify both --network-alias and per-network alias"},
		{name: "ip both ways", networks: []string{"name=front,ip=172.20.0.5"}, opts: createOptions{ip: "172.20.0.6"},
			err: "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{name: "alias on bridge", networks: []string{"bridge"}, opts: createOptions{aliases: []string{"b"}},
			err: "network-scoped aliases are only supported for user-defined networks"},
		{name: "bad ipv4", networks: []string{"name=front,ip=::1"}, err: "invalid IPv4 address: ::1"},
		{name: "bad mac", networks: []string{"name=front,mac-address=zz"}, err: "zz is not a valid mac address"},
	}
	for _, tc := range tests {
		o := tc.opts
		var err error
		for _, n := range tc.networks {
			if err = (networkList{&o.networks}).Set(n); err != nil {
				break
			}
		}
		if err == nil {
			var nc any
			nc, err = o.networking()
			if err == nil {
				b, _ := json.Marshal(nc)
				got := compactEndpoints(t, b)
				if got != tc.want || o.networkMode() != tc.mode {
					t.Errorf("%s: mode %q endpoints %s, want %q %s", tc.name, o.networkMode(), got, tc.mode, tc.want)
				}
			}
		}
		if (err != nil) != (tc.err != "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

// compactEndpoints re-encodes EndpointsConfig without zero fields.
func compactEndpoints(t *testing.T, b []byte) string {
	t.Helper()
	var nc struct{ EndpointsConfig map[string]map[string]any }
	if err := json.Unmarshal(b, &nc); err != nil {
		t.Fatal(err)
	}
	for _, ep := range nc.EndpointsConfig {
		for k, v := range ep {
			switch v := v.(type) {
			case nil, string:
				if v == nil || v == "" {
					delete(ep, k)
				}
			case float64:
				if v == 0 {
					delete(ep, k)
				}
			}
		}
	}
	out, _ := json.Marshal(nc.EndpointsConfig)
	return string(out)
}

func TestParseNetworkAttachmentErrors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"alias=a":              "network name/id is not specified",
		"name=front,bogus=1":   "invalid field key bogus",
		"name=front,alias":     "invalid field alias",
		"name=n,driver-opt=x":  "invalid key value pair format in driver options",
		"name=n,gw-priority=x": "invalid gw-priority: x",
	} {
		if _, err := parseNetworkAttachment(in); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
