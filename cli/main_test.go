package cli

import (
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
	"berth/image"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

const (
	busyboxID  = "sha256:341b535792115afd2ca1b76e7a4a4d2a5e8a6ba83c5ca9d7d5d0ffb1c1e5accd"
	danglingID = "sha256:cc63b1657c52aa8e8ae3f7b2f62e3b4e77a1e5b1a2f76f38a4e1d3a1b2c3d4e5"
	multiID    = "sha256:fa73c27da301aa8e8ae3f7b2f62e3b4e77a1e5b1a2f76f38a4e1d3a1b2c3d4e5"
	pushDigest = "sha256:6fc73e36aa8e8ae3f7b2f62e3b4e77a1e5b1a2f76f38a4e1d3a1b2c3d4e8dd20"
)

// fixtureImages is the store every command test starts from: a tagged and
// pushed busybox, a dangling image and a multi-layer image with history.
func fixtureImages(now time.Time) []apitest.Image {
	ago := func(d time.Duration) int64 { return now.Add(-d).Unix() }
	return []apitest.Image{
		{
			Summary: imagetypes.Summary{ID: busyboxID, Created: ago(12 * time.Minute), Size: 2_050_000, Containers: -1, SharedSize: -1,
				RepoTags:    []string{"127.0.0.1:5000/berth/busybox:latest", "busybox:latest"},
				RepoDigests: []string{"127.0.0.1:5000/berth/busybox@" + pushDigest}},
			Inspect: image.InspectResponse{InspectResponse: imagetypes.InspectResponse{Architecture: "amd64", Os: "linux", Size: 2_050_000}},
		},
		{Summary: imagetypes.Summary{ID: danglingID, Created: ago(time.Hour), Size: 6, Containers: -1, SharedSize: -1, RepoTags: []string{}, RepoDigests: []string{}}},
		{
			Summary: imagetypes.Summary{ID: multiID, Created: ago(72 * time.Hour), Size: 392_123_456, Containers: -1, SharedSize: -1,
				RepoTags: []string{"berth-multi:latest"}, RepoDigests: []string{}, Labels: map[string]string{"tier": "app"}},
			History: []imagetypes.HistoryResponseItem{
				{ID: multiID, Created: ago(12 * time.Minute), CreatedBy: `/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "ls -la /payload"]`, Tags: []string{"berth-multi:latest"}},
				{ID: "<missing>", Created: ago(12 * time.Minute), CreatedBy: "/bin/sh -c head -c 50331648 /dev/urandom > /payload/x", Size: 50_331_648},
				{ID: "<missing>", Created: ago(12 * time.Minute), Size: 116_000_000, Comment: "Imported from -"},
			},
		},
	}
}

// startDaemon serves the API on a unix socket backed by in-memory stores and
// returns its -H address.
func startDaemon(t *testing.T) (string, *apitest.Images) {
	t.Helper()
	// Whole minutes keep relative ages stable while a test runs:
	// 12m00s..12m59s all read "12 minutes ago".
	now := time.Now().Truncate(time.Minute)
	imgs := apitest.NewImages(time.Now, fixtureImages(now)...)
	sys := &apitest.System{Images: imgs, InfoDoc: system.Info{
		ID: "B3RT:H", Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}}, OSType: "linux",
		ServerVersion: "0.1.0", Name: "host1", NCPU: 2, MemTotal: 4 << 30, KernelVersion: "6.18.0",
		OperatingSystem: "Debian GNU/Linux 12 (bookworm)", Architecture: "x86_64", DockerRootDir: "/var/lib/berth",
		LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: "1", DefaultRuntime: "runc",
		Runtimes: map[string]system.RuntimeWithStatus{"runc": {}, "crun": {}}, Warnings: []string{"WARNING: No swap limit support"},
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
	}}
	sys.InfoDoc.Swarm.LocalNodeState = "inactive"
	h := api.New(api.Options{Images: imgs, System: sys, Version: api.VersionInfo{
		Version: "0.1.0", GitCommit: "abc1234", GoVersion: "go1.26.8", Os: "linux", Arch: "amd64",
		KernelVersion: "6.18.0", BuildTime: "Mon Nov 23 19:00:00 2026",
		Components: []system.ComponentVersion{{Name: "runc", Version: "1.1.5", Details: map[string]string{"GitCommit": "v1.1.5-0-gf19387a"}}},
	}})
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock, imgs
}

// run executes the CLI against host and returns stdout, stderr and the
// exit code.
func run(t *testing.T, host string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := Main(append([]string{"-H", host}, args...), stdin, &out, &errOut)
	return out.String(), errOut.String(), code
}

type cliCase struct {
	name    string
	args    []string
	stdin   string
	wantOut string
	wantErr string
	code    int
}

func runCases(t *testing.T, tests []cliCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, imgs := startDaemon(t)
			out, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
			// CreatedAt is printed in the local zone; compute it the same way.
			for _, img := range imgs.List() {
				if img.ID == danglingID {
					tt.wantOut = strings.ReplaceAll(tt.wantOut, "$DANGLING_CREATED_AT", time.Unix(img.Created, 0).String())
				}
			}
			if out != tt.wantOut {
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
