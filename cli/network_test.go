package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
)

// startNetworkDaemon serves an in-memory network backend that knows one
// container, "web".
func startNetworkDaemon(t *testing.T) (string, *apitest.Networks) {
	t.Helper()
	nets := apitest.NewNetworks(func() time.Time { return time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC) }, map[string]string{"web": strings.Repeat("ab", 32)})
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Networks: nets, Version: api.VersionInfo{Version: "0.1.0"}}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock, nets
}

func TestNetworkCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   [][]string
		args    []string
		stdin   string
		wantOut string
		wantErr string
		code    int
	}{
		{name: "ls", args: []string{"network", "ls"},
			wantOut: "NETWORK ID     NAME      DRIVER    SCOPE\n$ID(bridge)   bridge    bridge    local\n$ID(host)   host      host      local\n$ID(none)   none      null      local\n"},
		{name: "ls quiet filtered", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "list", "-q", "--filter", "type=custom"}, wantOut: "$ID(app)\n"},
		{name: "ls no-trunc", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "ls", "-q", "--no-trunc", "-f", "name=app"}, wantOut: "$FULLID(app)\n"},
		{name: "ls format", setup: [][]string{{"network", "create", "--label", "tier=web", "--internal", "app"}},
			args: []string{"network", "ls", "--format", `{{.Name}} {{.Driver}} {{.Internal}} {{.Labels}} {{.Label "tier"}}`, "-f", "label=tier"}, wantOut: "app bridge true tier=web web\n"},
		{name: "ls json", args: []string{"network", "ls", "--format", "json", "-f", "name=none"},
			wantOut: `{"CreatedAt":"2026-11-23 18:00:00 +0000 UTC","Driver":"null","ID":"$ID(none)","IPv4":"true","IPv6":"false","Internal":"false","Labels":"","Name":"none","Scope":"local"}` + "\n"},
		{name: "ls bad filter", args: []string{"network", "ls", "-f", "colour=red"}, code: 1, wantErr: "Error response from daemon: invalid filter 'colour'\n"},
		{name: "create", args: []string{"network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.254", "--ip-range", "10.9.0.128/25", "-o", "com.docker.network.bridge.name=br-app", "app"}, wantOut: "$FULLID(app)\n"},
		{name: "create duplicate", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "create", "app"}, code: 1,
			wantErr: "Error response from daemon: network with name app already exists\n"},
		{name: "create overlapping", setup: [][]string{{"network", "create", "--subnet", "10.9.0.0/24", "app"}}, args: []string{"network", "create", "--subnet", "10.9.0.0/16", "other"}, code: 1,
			wantErr: "Error response from daemon: invalid pool request: Pool overlaps with other one on this address space\n"},
		{name: "create gateway outside subnet", args: []string{"network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.8.0.1", "x"}, code: 1, wantErr: "no matching subnet for gateway 10.8.0.1\n"},
		{name: "create gateway without subnet", args: []string{"network", "create", "--gateway", "10.8.0.1", "x"}, code: 1, wantErr: "every ip-range or gateway must have a corresponding subnet\n"},
		{name: "create bad subnet", args: []string{"network", "create", "--subnet", "10.9.0/24", "x"}, code: 1, wantErr: "invalid CIDR address: 10.9.0/24\n"},
		{name: "create unknown driver", args: []string{"network", "create", "-d", "overlay", "x"}, code: 1, wantErr: "Error response from daemon: plugin \"overlay\" not found\n"},
		{name: "create no name", args: []string{"network", "create"}, code: 1,
			wantErr: "berth: 'berth network create' requires 1 argument\n\nUsage:  berth network create [OPTIONS] NETWORK\n\nRun 'berth network create --help' for more information\n"},
		{name: "inspect format", setup: [][]string{{"network", "create", "--subnet", "10.9.0.0/24", "app"}},
			args: []string{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{(index .IPAM.Config 0).Subnet}}", "app", "bridge"}, wantOut: "app bridge 10.9.0.0/24\nbridge bridge 172.17.0.0/16\n"},
		{name: "inspect missing", args: []string{"network", "inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error response from daemon: network nope not found\n"},
		{name: "rm", setup: [][]string{{"network", "create", "a"}, {"network", "create", "b"}}, args: []string{"network", "rm", "a", "nope", "b"}, code: 1,
			wantOut: "a\nb\n", wantErr: "Error response from daemon: network nope not found\n"},
		{name: "rm force missing", args: []string{"network", "remove", "-f", "nope"}},
		{name: "rm predefined", args: []string{"network", "rm", "bridge"}, code: 1, wantErr: "Error response from daemon: bridge is a pre-defined network and cannot be removed\n"},
		{name: "rm in use", setup: [][]string{{"network", "create", "app"}, {"network", "connect", "app", "web"}}, args: []string{"network", "rm", "app"}, code: 1,
			wantErr: "Error response from daemon: error while removing network: network app has active endpoints (name:\"web\" id:\"abababababab\")\n"},
		{name: "connect unknown container", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "connect", "--alias", "w", "--ip", "10.0.0.5", "app", "ghost"}, code: 1,
			wantErr: "Error response from daemon: No such container: ghost\n"},
		{name: "connect bad ip", args: []string{"network", "connect", "--ip", "10.0.0", "bridge", "web"}, code: 1, wantErr: "invalid IP address: 10.0.0\n"},
		{name: "disconnect", setup: [][]string{{"network", "create", "app"}, {"network", "connect", "app", "web"}}, args: []string{"network", "disconnect", "-f", "app", "web"}},
		{name: "disconnect not connected", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "disconnect", "app", "web"}, code: 1,
			wantErr: "Error response from daemon: container abababababab is not connected to network app\n"},
		{name: "prune declined", setup: [][]string{{"network", "create", "app"}}, args: []string{"network", "prune"}, stdin: "n\n",
			wantOut: "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "},
		{name: "prune", setup: [][]string{{"network", "create", "app"}, {"network", "create", "used"}, {"network", "connect", "used", "web"}, {"network", "create", "zoo"}},
			args: []string{"network", "prune", "-f"}, wantOut: "Deleted Networks:\napp\nzoo\n\n"},
		{name: "prune nothing", args: []string{"network", "prune", "-f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, nets := startNetworkDaemon(t)
			for _, s := range tt.setup {
				if _, errOut, code := run(t, host, nil, s...); code != 0 {
					t.Fatalf("setup %v: %s", s, errOut)
				}
			}
			out, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
			want := expandIDs(t, nets, tt.wantOut)
			if out != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
			}
			if errOut != tt.wantErr {
				t.Errorf("stderr:\n%q\nwant:\n%q", errOut, tt.wantErr)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
		})
	}
}

// expandIDs replaces $ID(name) and $FULLID(name) with the network's id.
func expandIDs(t *testing.T, nets *apitest.Networks, s string) string {
	t.Helper()
	for {
		i := strings.Index(s, "ID(")
		if i < 1 || s[i-1] != '$' && !strings.HasSuffix(s[:i], "$FULL") {
			return s
		}
		j := strings.Index(s[i:], ")")
		name := s[i+3 : i+j]
		doc, err := nets.NetworkInspect(context.Background(), name)
		if err != nil {
			t.Fatalf("expand %s: %v", name, err)
		}
		start, id := i-1, doc.ID[:12]
		if strings.HasSuffix(s[:i], "$FULL") {
			start, id = i-5, doc.ID
		}
		s = s[:start] + id + s[i+j+1:]
	}
}
