package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/testutil"
)

// httpdRounds is how many web servers each system starts, per way in.
const httpdRounds = 15

const (
	httpdPublished = "web server: run -d -p, first HTTP 200 via the published port"
	httpdAddress   = "web server: run -d + inspect, first HTTP 200 at the container address"
)

// BenchmarkHTTPDFirstAnswer times, on berth and each peer engine, the time
// from `run -d` of a busybox httpd to its first HTTP 200, as a user waiting
// for a web server sees it (the CLI process, create, start, networking, the
// server's own start), two ways in:
//
//	published  GET 127.0.0.1:<port> of `-p 127.0.0.1:<port>:80`
//	address    `inspect` for the container's IP, then GET <ip>:80 on the
//	           engine's bridge (no NAT, no proxy)
//
// The floor is the same busybox httpd started on the host, no container:
// exec to first answer. Every container is removed, untimed, after its
// answer.
func BenchmarkHTTPDFirstAnswer(b *testing.B) {
	es := startEngines(b)
	n := len(es.all)
	for range b.N {
		for _, wl := range []struct {
			name      string
			published bool
		}{{httpdPublished, true}, {httpdAddress, false}} {
			runs := alternate(httpdRounds, n+1, func(i int) float64 {
				if i == n {
					return hostHTTPD(b)
				}
				return firstAnswer(b, es.all[i], wl.published)
			})
			note := "busybox httpd -f -p 80 -h /etc in the fixture image (the floor: the same binary on the host, no container); polled every millisecond with a fresh connection"
			recordAll(b, es, wl.name, note, runs, floorRuns{"busybox httpd on the host", runs[n]})
		}
	}
}

var httpClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// firstAnswer runs one httpd on e and returns the seconds from run -d to
// the first 200; the container is removed (untimed) before it returns.
func firstAnswer(b *testing.B, e *engine, published bool) float64 {
	b.Helper()
	const name = "bbh-httpd"
	args := []string{"run", "-d", "--name", name}
	url := ""
	if published {
		port := freeTCPPort(b)
		url = fmt.Sprintf("http://127.0.0.1:%d/hostname", port)
		args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:80", port))
	}
	args = append(args, busyboxImage, "httpd", "-f", "-p", "80", "-h", "/etc")
	defer func() {
		if err := e.remove(name); err != nil {
			b.Fatal(err)
		}
	}()
	start := time.Now()
	e.must(b, args...)
	if !published {
		ip := strings.TrimSpace(e.must(b, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name))
		if net.ParseIP(ip) == nil {
			b.Fatalf("%s: container address %q", e.name, ip)
		}
		url = "http://" + ip + "/hostname"
	}
	return waitAnswer(b, e.name, url, start)
}

// hostHTTPD starts busybox httpd on the host and returns the seconds from
// exec to its first 200; it is stopped by its PID after.
func hostHTTPD(b *testing.B) float64 {
	b.Helper()
	port := freeTCPPort(b)
	cmd := exec.Command(testutil.BusyboxPath, "httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", port), "-h", "/etc")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	return waitAnswer(b, "host httpd", fmt.Sprintf("http://127.0.0.1:%d/hostname", port), start)
}

// waitAnswer polls url until it answers 200, for at most 30 s.
func waitAnswer(b *testing.B, who, url string, start time.Time) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: GET %s: %s", who, url, resp.Status)
			}
			return time.Since(start).Seconds()
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s: no answer from %s in 30 s", who, url)
	return 0
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
