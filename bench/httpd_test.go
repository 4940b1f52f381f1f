package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/testutil"
)

// The httpd benchmark: the time from `berth run -d` of a busybox httpd to
// its first HTTP answer, as a user waiting for a web server sees it (the
// CLI process, create, start, networking, the server's own start). Each
// round runs httpdRounds containers one after the other and reports the
// median and range, for two ways in:
//
//	published  GET 127.0.0.1:<port> of `-p <port>:80` (DNAT from the host)
//	address    GET <container IP>:80 on the bridge (no NAT); the lowest
//	           free address, which the previous container freed
//
// docker is measured the same way when a docker daemon answers on
// /var/run/docker.sock; otherwise the output says it is not running.
const httpdRounds = 9

func BenchmarkHTTPDFirstAnswer(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the httpd benchmark runs a daemon with a bridge and needs root")
	}
	d := startHTTPDDaemon(b)
	var pub, addr []time.Duration
	for range b.N {
		for range httpdRounds {
			pub = append(pub, d.firstAnswer(b, true))
			addr = append(addr, d.firstAnswer(b, false))
		}
	}
	b.ReportMetric(float64(medianOf(pub).Microseconds())/1000, "ms-published")
	b.ReportMetric(float64(medianOf(addr).Microseconds())/1000, "ms-address")
	docker := "docker: not running on this machine (no daemon on /var/run/docker.sock), so only berth is measured"
	if c, err := net.Dial("unix", "/var/run/docker.sock"); err == nil {
		c.Close()
		docker = "docker: a daemon is running, but this benchmark drives only berth's own daemon; compare with `docker run -d -p` by hand"
	}
	fmt.Printf("\nrun -d of busybox httpd -> first HTTP 200 (%d runs each)\n  via published port: median %s (%s .. %s)\n  via container IP:   median %s (%s .. %s)\n%s\n\n",
		len(pub), fmtDur(medianOf(pub)), fmtDur(slices.Min(pub)), fmtDur(slices.Max(pub)),
		fmtDur(medianOf(addr)), fmtDur(slices.Min(addr)), fmtDur(slices.Max(addr)), docker)
}

// httpdDaemon is a berth daemon of the benchmark's own: private roots, its
// own bridge and subnet, removed afterwards.
type httpdDaemon struct {
	bin, host, bridge string
	gateway           [4]byte
	cmd               *exec.Cmd
}

func startHTTPDDaemon(b *testing.B) *httpdDaemon {
	b.Helper()
	dir, err := os.MkdirTemp("", "bbh-")
	if err != nil {
		b.Fatal(err)
	}
	pid := os.Getpid()
	d := &httpdDaemon{bin: filepath.Join(dir, "berth"), host: "unix://" + filepath.Join(dir, "b.sock"),
		bridge: fmt.Sprintf("bbh%d", pid%100000), gateway: [4]byte{10, 178, byte(pid % 250), 1}}
	b.Cleanup(func() { d.stop(b, dir) })
	build := exec.Command("go", "build", "-o", d.bin, "berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build berth: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	bip := fmt.Sprintf("%d.%d.%d.1/24", d.gateway[0], d.gateway[1], d.gateway[2])
	d.cmd = exec.Command(d.bin, "daemon", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", d.host, "--config-file", cfg, "--bridge", d.bridge, "--bip", bip)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log bytes.Buffer
	d.cmd.Stdout, d.cmd.Stderr = &log, &log
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); d.cli("version") != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("daemon did not start:\n%s", log.String())
		}
	}
	tar, err := os.Open(testutil.BusyboxTar(b))
	if err != nil {
		b.Fatal(err)
	}
	defer tar.Close()
	imp := exec.Command(d.bin, "-H", d.host, "import", "-c", `CMD ["sh"]`, "-", "busybox:latest")
	imp.Stdin = tar
	if out, err := imp.CombinedOutput(); err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}
	return d
}

func (d *httpdDaemon) cli(args ...string) error {
	return exec.Command(d.bin, append([]string{"-H", d.host}, args...)...).Run()
}

// firstAnswer runs one httpd and times run -d to the first 200; the
// container is removed (untimed) before it returns.
func (d *httpdDaemon) firstAnswer(b *testing.B, published bool) time.Duration {
	b.Helper()
	url := fmt.Sprintf("http://%d.%d.%d.2/hostname", d.gateway[0], d.gateway[1], d.gateway[2])
	args := []string{"-H", d.host, "run", "-d", "--name", "bench-httpd"}
	if published {
		port := freeTCPPort(b)
		url = fmt.Sprintf("http://127.0.0.1:%d/hostname", port)
		args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:80", port))
	}
	args = append(args, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer func() {
		if err := d.cli("rm", "-f", "bench-httpd"); err != nil {
			b.Fatalf("rm: %v", err)
		}
	}()
	start := time.Now()
	if out, err := exec.Command(d.bin, args...).CombinedOutput(); err != nil {
		b.Fatalf("run: %v\n%s", err, out)
	}
	for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %s", url, resp.Status)
			}
			return time.Since(start)
		}
	}
	b.Fatalf("no answer from %s in 30s", url)
	return 0
}

// stop removes everything the daemon made: containers, the daemon, its
// bridge and table, mounts left under dir, and dir.
func (d *httpdDaemon) stop(b *testing.B, dir string) {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cli("rm", "-f", "bench-httpd")
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- d.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
	}
	exec.Command("ip", "link", "del", d.bridge).Run()
	exec.Command("nft", "delete", "table", "ip", "berth-"+d.bridge).Run()
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		lines := strings.Split(string(mi), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Logf("remove %s: %v", dir, err)
	}
}

func freeTCPPort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
