package network

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/network"
)

// BenchmarkSetupTeardown measures a default-bridge sandbox with one
// published port: namespace, veth, addresses, ruleset, files, and back.
func BenchmarkSetupTeardown(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		id := ctrID(fmt.Sprint("bench", i))
		_, err := e.svc.Setup(ctx, SandboxRequest{ContainerID: id, Name: "bench", Dir: dir,
			PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.svc.Teardown(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstHTTPAnswer is the network's share of `run -d httpd` until
// its first HTTP answer through a published port on 127.0.0.1: sandbox
// setup, the server starting in it, and the first successful GET.
func BenchmarkFirstHTTPAnswer(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	www := b.TempDir()
	write(e.t, filepath.Join(www, "index.html"), "ok")
	for i := range b.N {
		id := ctrID(fmt.Sprint("httpd", i))
		start := time.Now()
		sb, err := e.svc.Setup(ctx, SandboxRequest{ContainerID: id, Name: "httpd", Dir: b.TempDir(),
			PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}})
		if err != nil {
			b.Fatal(err)
		}
		cmd := nstest.Start(b, sb.NetnsPath, "busybox", "httpd", "-f", "-p", "80", "-h", www)
		for {
			if body, err := get(e.hostNS, "127.0.0.1:8080"); err == nil && body == "ok" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/first-answer")
		cmd.Process.Kill()
		cmd.Wait()
		if err := e.svc.Teardown(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
