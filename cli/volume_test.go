package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth/api"
	"berth/volume"

	"github.com/moby/moby/api/types/mount"
	bolt "go.etcd.io/bbolt"
)

// startVolumeDaemon serves the real volume service on a temporary store;
// the container "c1" uses the volume "used".
func startVolumeDaemon(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "volumes")
	vols, err := volume.New(context.Background(), volume.Options{DB: db, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := vols.Attach(context.Background(), "c1", []volume.MountPoint{{Type: mount.TypeVolume, Name: "used", Destination: "/u"}}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Volumes: vols, Version: api.VersionInfo{Version: "0.1.0"}}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock, root
}

func TestVolumeCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   [][]string
		args    []string
		stdin   string
		wantOut string // $ROOT is the volumes directory; $ANON matches a 64-hex name
		wantErr string
		code    int
	}{
		{name: "create", args: []string{"volume", "create", "--label", "a=b", "v1"}, wantOut: "v1\n"},
		{name: "create by flag", args: []string{"volume", "create", "--name", "v1"}, wantOut: "v1\n"},
		{name: "create anonymous", args: []string{"volume", "create"}, wantOut: "$ANON\n"},
		{name: "create conflicting names", args: []string{"volume", "create", "--name", "a1", "b1"}, code: 1,
			wantErr: "conflicting options: either specify --name or provide positional arg, not both\n"},
		{name: "create bad option", args: []string{"volume", "create", "-o", "colour=red", "v1"}, code: 1,
			wantErr: "Error response from daemon: create v1: invalid option: \"colour\"\n"},
		{name: "create unknown driver", args: []string{"volume", "create", "-d", "flocker", "v1"}, code: 1,
			wantErr: "Error response from daemon: create v1: error looking up volume plugin flocker: plugin \"flocker\" not found\n"},
		{name: "ls", setup: [][]string{{"volume", "create", "v10"}, {"volume", "create", "v2"}},
			args: []string{"volume", "ls"}, wantOut: "DRIVER    VOLUME NAME\nlocal     used\nlocal     v2\nlocal     v10\n"},
		{name: "ls quiet dangling", setup: [][]string{{"volume", "create", "v2"}}, args: []string{"volume", "list", "-q", "--filter", "dangling=true"}, wantOut: "v2\n"},
		{name: "ls format", setup: [][]string{{"volume", "create", "--label", "tier=web", "--label", "b=c", "v2"}},
			args: []string{"volume", "ls", "-f", "label=tier", "--format", `{{.Name}} {{.Labels}} {{.Label "tier"}} {{.Mountpoint}}`}, wantOut: "v2 b=c,tier=web web $ROOT/v2/_data\n"},
		{name: "ls json", args: []string{"volume", "ls", "--format", "json"},
			wantOut: `{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"","Links":"N/A","Mountpoint":"$ROOT/used/_data","Name":"used","Scope":"local","Size":"N/A","Status":"N/A"}` + "\n"},
		{name: "ls bad filter", args: []string{"volume", "ls", "-f", "colour=red"}, code: 1, wantErr: "Error response from daemon: invalid filter 'colour'\n"},
		{name: "inspect format", setup: [][]string{{"volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "v2"}},
			args: []string{"volume", "inspect", "-f", "{{.Name}} {{.Options}} {{.Labels}}", "v2", "used"}, wantOut: "v2 map[device:tmpfs type:tmpfs] map[]\nused map[] map[]\n"},
		{name: "inspect missing", args: []string{"volume", "inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error response from daemon: get nope: no such volume\n"},
		{name: "rm", setup: [][]string{{"volume", "create", "a1"}, {"volume", "create", "b1"}}, args: []string{"volume", "rm", "a1", "nope", "used", "b1"}, code: 1,
			wantOut: "a1\nb1\n", wantErr: "Error response from daemon: get nope: no such volume\nError response from daemon: remove used: volume is in use - [c1]\n"},
		{name: "rm force missing", args: []string{"volume", "remove", "-f", "nope"}, wantOut: "nope\n"},
		{name: "prune declined", args: []string{"volume", "prune"}, stdin: "n\n",
			wantOut: "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "},
		{name: "prune anonymous", setup: [][]string{{"volume", "create"}, {"volume", "create", "named"}}, args: []string{"volume", "prune"}, stdin: "y\n",
			wantOut: "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] Deleted Volumes:\n$ANON\n\nTotal reclaimed space: 0B\n"},
		{name: "prune all", setup: [][]string{{"volume", "create", "named"}, {"volume", "create", "--label", "keep", "kept"}},
			args: []string{"volume", "prune", "-a", "-f", "--filter", "label!=keep"}, wantOut: "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"},
		{name: "prune nothing", args: []string{"volume", "prune", "-f"}, wantOut: "Total reclaimed space: 0B\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, root := startVolumeDaemon(t)
			for _, s := range tt.setup {
				if _, errOut, code := run(t, host, nil, s...); code != 0 {
					t.Fatalf("setup %v: %s", s, errOut)
				}
			}
			out, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
			want := regexp.QuoteMeta(strings.ReplaceAll(tt.wantOut, "$ROOT", root))
			want = "^" + strings.ReplaceAll(want, `\$ANON`, "[0-9a-f]{64}") + "$"
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.wantOut)
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

func TestNaturalCompare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"v2", "v10", true}, {"v10", "v2", false}, {"a", "b", true}, {"v02", "v3", true},
		{"data", "data1", true}, {"x9y", "x10a", true}, {"same", "same", false},
	} {
		if got := naturalCompare(tc.a, tc.b) < 0; got != tc.less {
			t.Errorf("naturalCompare(%q, %q) < 0 = %v", tc.a, tc.b, got)
		}
	}
}

func TestAbsoluteBindSource(t *testing.T) {
	t.Parallel()
	abs, _ := filepath.Abs("./src")
	for in, want := range map[string]string{
		"./src:/src":      abs + ":/src",
		"./src:/src:ro":   abs + ":/src:ro",
		"/host:/h":        "/host:/h",
		"named:/data":     "named:/data",
		".hidden:/h:rw,z": filepath.Join(filepath.Dir(abs), ".hidden") + ":/h:rw,z",
	} {
		if got := absoluteBindSource(in); got != want {
			t.Errorf("absoluteBindSource(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"./src": abs, ".": filepath.Dir(abs), "rel": "rel", "/abs": "/abs", ".hidden": ".hidden"} {
		if got := absoluteMountSource(in); got != want {
			t.Errorf("absoluteMountSource(%q) = %q, want %q", in, got, want)
		}
	}
}
