package spec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

const (
	runcPath    = "/usr/sbin/runc"
	busyboxPath = "/bin/busybox"
)

// probe prints what the container process sees, one key=value per line.
const probe = `echo "ids=$(id -u):$(id -g):$(id -G)"
echo "hostname=$(hostname)"
echo "cwd=$(pwd)"
echo "etchostname=$(cat /etc/hostname)"
grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
for p in $MASKED; do
  if [ -c $p ]; then echo "masked:$p=$(stat -c %t:%T $p)"; elif [ -d $p ]; then echo "masked:$p=dir$(ls -A $p | wc -l)"; elif [ -e $p ]; then echo "masked:$p=visible"; fi
done
echo "nofile=$(ulimit -Sn):$(ulimit -Hn)"
if [ -c /dev/mynull ] && echo x > /dev/mynull; then echo "mydev=$(stat -c %t:%T /dev/mynull)"; fi
if mkdir /tmp/probedir 2>/dev/null && rmdir /tmp/probedir; then echo mkdir=ok; else echo mkdir=denied; fi
if touch /probe 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
if echo x > /proc/sys/kernel/domainname 2>/dev/null; then echo procsys=rw; else echo procsys=ro; fi
if mount -t tmpfs t /mnt 2>/dev/null; then echo mount=ok; else echo mount=denied; fi
env | sed 's/^/env:/'`

// TestRuncRun runs generated specs with the real runc and checks what the
// process inside sees.
func TestRuncRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runc needs root to create namespaces and cgroups")
	}
	for _, p := range []string{runcPath, busyboxPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	rootfs := busyboxRootfs(t)
	bounding, err := HostBoundingCaps()
	if err != nil {
		t.Fatal(err)
	}
	lastCap, err := HostLastCap()
	if err != nil {
		t.Fatal(err)
	}
	masked := maskedWant(t)
	tests := []struct {
		name   string
		user   string
		change func(*Input)
		want   []string
	}{
		{
			name: "default root",
			want: append([]string{"ids=0:0:0 10", "hostname=spectest", "cwd=/", "etchostname=spectest",
				"CapEff=00000000a80425fb", "CapBnd=00000000a80425fb", "Seccomp=2", "NoNewPrivs=0",
				"procsys=ro", "mount=denied", "rootfs=rw", "mkdir=ok",
				"env:HOSTNAME=spectest", "env:HOME=/root", "env:PATH=" + DefaultPath, "env:FROM_IMAGE=1"}, masked...),
		},
		{
			name: "app user with workdir and env",
			user: "app",
			change: func(in *Input) {
				in.Config.User, in.Config.WorkingDir = "app", "/tmp"
				in.Config.Env = append(in.Config.Env, "FROM_IMAGE=2", "X=y")
			},
			want: append([]string{"ids=1000:1000:1000 10", "cwd=/tmp", "CapEff=0000000000000000",
				"CapBnd=00000000a80425fb", "Seccomp=2", "procsys=ro",
				"env:HOME=/home/app", "env:FROM_IMAGE=2", "env:X=y"}, masked...),
		},
		{
			name: "cap-add SYS_ADMIN opens mount in seccomp, no-new-privileges, ulimit, read-only rootfs, --device",
			change: func(in *Input) {
				in.HostConfig.CapAdd = []string{"sys_admin"}
				in.HostConfig.SecurityOpt = []string{"no-new-privileges"}
				in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}}
				in.HostConfig.ReadonlyRootfs = true
				devs, err := ResolveDevices([]container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}})
				if err != nil {
					t.Fatal(err)
				}
				in.Devices = devs
			},
			want: append([]string{"CapEff=00000000a82425fb", "Seccomp=2", "NoNewPrivs=1", "mount=ok",
				"nofile=512:1024", "rootfs=ro", "mydev=1:3"}, masked...),
		},
		{
			name: "custom seccomp profile denies mkdir",
			change: func(in *Input) {
				in.HostConfig.SecurityOpt = []string{`seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
					{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}`}
			},
			want: append([]string{"Seccomp=2", "mkdir=denied", "mount=denied", "CapEff=00000000a80425fb"}, masked...),
		},
		{
			name: "privileged",
			change: func(in *Input) {
				devs, err := HostDevices("/dev")
				if err != nil {
					t.Fatal(err)
				}
				in.HostConfig.Privileged = true
				in.HostDevices, in.HostBounding, in.CapLastCap = devs, bounding, lastCap
			},
			want: []string{"CapEff=" + capMask(bounding), "Seccomp=0", "procsys=rw", "mount=ok",
				"masked:/proc/keys=visible", "masked:/proc/timer_list=visible"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ResolveUser(rootfs, tt.user, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := runSpec(t, rootfs, u, tt.change)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("missing %q in output:\n%s", w, out)
				}
			}
		})
	}
}

func capMask(caps []string) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(capabilityNumber(c))
	}
	return fmt.Sprintf("%016x", m)
}

// maskedWant is what the probe must print for each default masked path
// that exists on this kernel (this host, for one, has no /proc/kcore):
// files become /dev/null (1:3), directories an empty tmpfs.
func maskedWant(t *testing.T) []string {
	var want []string
	for _, p := range defaultMaskedPaths {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case st.IsDir():
			want = append(want, "masked:"+p+"=dir0")
		default:
			want = append(want, "masked:"+p+"=1:3")
		}
	}
	if len(want) == 0 {
		t.Fatal("none of the masked paths exists on this host; the test would check nothing")
	}
	return want
}

func runSpec(t *testing.T, rootfs string, u User, change func(*Input)) string {
	t.Helper()
	in := probeInput(t, rootfs, u)
	if change != nil {
		change(&in)
	}
	bundle, state := writeBundle(t, in)
	out, err := runc(t, state, "run", "--bundle", bundle, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// probeInput is a container running the probe, with a hostname file.
func probeInput(t *testing.T, rootfs string, u User) Input {
	t.Helper()
	id := "spectest-" + randHex(t)
	hostnameFile := filepath.Join(t.TempDir(), "hostname")
	if err := os.WriteFile(hostnameFile, []byte("spectest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, err := HostRlimits()
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		ID: id, HostConfig: &container.HostConfig{},
		Config: &container.Config{
			Entrypoint: []string{"/bin/sh", "-c", probe},
			Env:        []string{"MASKED=" + strings.Join(defaultMaskedPaths, " ")},
		},
		Image:  image(nil, []string{"sh"}, "FROM_IMAGE=1"),
		Rootfs: rootfs, User: u, Hostname: "spectest", HostnamePath: hostnameFile,
		HostRlimits: host, CgroupsPath: "/berth-" + id,
	}
}

// writeBundle generates the spec into a bundle and returns it with a
// private runc state root; the container is force-deleted on cleanup.
func writeBundle(t *testing.T, in Input) (bundle, state string) {
	t.Helper()
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundle, state = filepath.Join(dir, "bundle"), filepath.Join(dir, "runc")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(bundle, "config.json"), s)
	t.Cleanup(func() {
		// runc delete -f removes the container and its cgroups even when
		// run failed half-way; it is a no-op error when nothing is left.
		_ = exec.Command(runcPath, "--root", state, "delete", "-f", in.ID).Run()
	})
	return bundle, state
}

func writeJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runc runs one runc command and returns its stdout. Output goes to files,
// not pipes: a detached container would hold a pipe open and Wait would
// never return.
func runc(t *testing.T, state string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, runcPath, append([]string{"--root", state}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	out, err := os.ReadFile(stdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		errOut, _ := os.ReadFile(stderr.Name())
		return "", fmt.Errorf("runc %s: %v\nstderr: %s\nstdout: %s", args[0], runErr, errOut, out)
	}
	return string(out), nil
}

// TestRuncExec execs a process built by ExecProcess into a running
// container and checks what it sees.
func TestRuncExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runc needs root to create namespaces and cgroups")
	}
	for _, p := range []string{runcPath, busyboxPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	rootfs := busyboxRootfs(t)
	root, err := ResolveUser(rootfs, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := probeInput(t, rootfs, root)
	in.Config.Entrypoint = []string{"/bin/sleep", "60"}
	in.HostConfig.SecurityOpt = []string{"no-new-privileges"}
	bundle, state := writeBundle(t, in)
	if _, err := runc(t, state, "run", "-d", "--bundle", bundle, in.ID); err != nil {
		t.Fatalf("runc run -d: %v", err)
	}
	app, err := ResolveUser(rootfs, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge(in.Config, in.Image)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := ExecProcess(ExecInput{
		Config: merged, HostConfig: in.HostConfig, Hostname: in.Hostname, User: app,
		Cmd: []string{"/bin/sh", "-c", probe}, Env: []string{"EXEC=1"}, WorkingDir: "/tmp",
		HostRlimits: in.HostRlimits,
	})
	if err != nil {
		t.Fatal(err)
	}
	procFile := filepath.Join(t.TempDir(), "process.json")
	writeJSON(t, procFile, proc)
	out, err := runc(t, state, "exec", "--process", procFile, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, w := range []string{"ids=1000:1000:1000 10", "hostname=spectest", "cwd=/tmp", "CapEff=0000000000000000",
		"Seccomp=2", "NoNewPrivs=1", "procsys=ro", "env:EXEC=1", "env:FROM_IMAGE=1", "env:HOME=/home/app"} {
		if !slices.Contains(lines, w) {
			t.Errorf("missing %q in output:\n%s", w, out)
		}
	}
}

// busyboxRootfs lays out a minimal image: the static busybox with its
// applets as symlinks, and passwd/group with a non-root user.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "mnt", "root", "home/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "id", "hostname", "pwd", "cat", "grep", "tr", "sed", "wc", "stat", "ls", "touch", "mkdir", "rmdir", "env", "echo", "mount", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func randHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
