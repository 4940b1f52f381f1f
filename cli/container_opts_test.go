package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// createFlagSets are `create` invocations whose requests are compared
// with the docker CLI's: together they touch every flag berth maps.
func createFlagSets(t *testing.T) [][]string {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	writeFile(t, envFile, "# comment\nFROM_FILE=1\n\nSPACED=a b\n")
	labelFile := filepath.Join(dir, "labels")
	writeFile(t, labelFile, "team=core\n")
	seccomp := filepath.Join(dir, "seccomp.json")
	writeFile(t, seccomp, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n")
	return [][]string{
		{"busybox", "true"},
		{"-it", "busybox", "sh"},
		{"-i", "-a", "stdout", "--name", "named", "busybox", "cat"},
		{"-e", "A=1", "-e", "UNSET_BERTH_TEST_VAR", "-e", "PATH", "--env-file", envFile, "-w", "/tmp", "-u", "nobody:nogroup", "busybox", "env"},
		{"-l", "a=1", "--label", "b", "--label-file", labelFile, "-h", "box", "--domainname", "example.org", "busybox", "true"},
		{"--entrypoint", "", "busybox", "ls"},
		{"--entrypoint", "/bin/sh", "--stop-signal", "SIGUSR1", "--stop-timeout", "3", "busybox", "-c", "true"},
		{"--restart", "on-failure:3", "--init", "--read-only", "--privileged", "--cap-add", "net_admin", "--cap-drop", "ALL", "busybox", "true"},
		{"--restart", "unless-stopped", "--runtime", "crun", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=" + seccomp, "busybox", "true"},
		{"-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m", "--cpus", "1.5", "--pids-limit", "100", "--shm-size", "128m", "busybox", "true"},
		{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=64", "--cpu-shares", "512", "--cpuset-cpus", "0-1", "--oom-score-adj", "100", "busybox", "true"},
		{"-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "9000-9001:9000-9001", "-p", "[::1]:8443:443", "--expose", "7000-7001", "-P", "busybox", "true"},
		{"--network", "host", "--add-host", "db:10.0.0.2", "--add-host", "gw:host-gateway", "--dns", "1.1.1.1", "--dns-search", "example.org", "--dns-option", "ndots:2", "busybox", "true"},
		{"--network", "appnet", "--ip", "172.30.0.9", "--network-alias", "api", "busybox", "true"},
		{"-v", "/data", "-v", "/srv:/srv:ro", "-v", "named:/named", "--tmpfs", "/run:rw,size=64m", "--volumes-from", "other:ro", "busybox", "true"},
		{"--mount", "type=bind,source=/srv,target=/srv,readonly", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "--mount", "type=volume,src=v,dst=/v,volume-nocopy", "busybox", "true"},
		{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--sysctl", "net.core.somaxconn=1024", "--group-add", "audio", "--ipc", "private", "--pid", "host", "busybox", "true"},
		{"--device", "/dev/null:/dev/nil:r", "--device-cgroup-rule", "c 1:3 mr", "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2", "busybox", "true"},
		{"--no-healthcheck", "--platform", "linux/amd64", "--rm", "busybox", "true"},
		{"--network", "appnet", "busybox", "true"},
		{"--network", "none", "busybox", "true"},
		{"--network", "container:web", "busybox", "true"},
	}
}

// TestCreateRequestParity sends the same create flags through the docker
// CLI and berth and compares the requests the daemon received: the query
// and the JSON body (Config, HostConfig, NetworkingConfig).
func TestCreateRequestParity(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; parity cannot be checked")
	}
	for _, flags := range createFlagSets(t) {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"create"}, flags...)
			dockerHost, dockerReqs := recordingDaemon(t)
			cmd := exec.Command(docker, append([]string{"-H", dockerHost}, args...)...)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "HOME="+t.TempDir())
			var dout, derr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &dout, &derr
			if err := cmd.Run(); err != nil {
				t.Fatalf("docker create: %v: %s", err, derr.String())
			}
			berthHost, berthReqs := recordingDaemon(t)
			bout, berr, code := run(t, berthHost, nil, args...)
			if code != 0 || bout != dout.String() {
				t.Fatalf("berth create = %d %q %q; docker printed %q", code, bout, berr, dout.String())
			}
			want, got := dockerReqs(), berthReqs()
			if got != want {
				t.Errorf("create requests differ\ndocker: %s\nberth:  %s", want, got)
			}
		})
	}
}

// recordingDaemon is an in-memory daemon that also keeps the create
// requests it gets, as "query body" with the body re-encoded so that
// spacing and key order do not matter.
func recordingDaemon(t *testing.T) (string, func() string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	host, _ := startContainerDaemonWith(t, false, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/create") {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Error(err)
				}
				var v map[string]any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Errorf("create body %q: %v", body, err)
				}
				// The API 1.56 types leave out an empty OnBuild that
				// older clients send as null; the daemon reads both alike.
				if v["OnBuild"] == nil {
					delete(v, "OnBuild")
				}
				// docker passes Env (`-e NAME` lookups) and Binds through
				// maps, so their order varies from run to run.
				sortStrings(v["Env"])
				if hc, ok := v["HostConfig"].(map[string]any); ok {
					sortStrings(hc["Binds"])
				}
				canon, _ := json.Marshal(v)
				mu.Lock()
				seen = append(seen, r.URL.RawQuery+" "+string(canon))
				mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next.ServeHTTP(w, r)
		})
	})
	return host, func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(seen, "\n")
	}
}

func sortStrings(v any) {
	if list, ok := v.([]any); ok {
		slices.SortFunc(list, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	}
}
