// Package nstest gives root tests throwaway network namespaces and ways to
// run processes and open sockets inside them. Everything is undone by
// t.Cleanup, also when a test fails.
package nstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/network/nsenter"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips tests that need to create namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, links and nftables tables")
	}
}

// NewNetns creates a namespace with lo up and returns its path; the
// namespace is removed when the test ends.
func NewNetns(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "netns")
	if err := nsenter.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsenter.Remove(path); err != nil {
			t.Errorf("remove test netns: %v", err)
		}
	})
	h := Handle(t, path)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return path
}

// Handle is a netlink handle inside the namespace at path.
func Handle(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// AddDummy adds an interface that only holds the address cidr: a dummy,
// or a bridge without ports on kernels built without the dummy driver.
func AddDummy(t testing.TB, path, name, cidr string) {
	t.Helper()
	h := Handle(t, path)
	var d netlink.Link = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
	err := h.LinkAdd(d)
	if errors.Is(err, unix.EOPNOTSUPP) {
		d = &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		err = h.LinkAdd(d)
	}
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(d, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(d); err != nil {
		t.Fatal(err)
	}
}

// Link joins two namespaces with a veth pair: a gets aCIDR, b gets bCIDR,
// and b routes everything through a's address (b is "outside" a).
func Link(t testing.TB, a, b, aCIDR, bCIDR string) {
	t.Helper()
	ha, hb := Handle(t, a), Handle(t, b)
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	name := fmt.Sprintf("tl%d", time.Now().UnixNano()%1e9)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "uplink", PeerNamespace: netlink.NsFd(int(fb.Fd()))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	up := func(h *netlink.Handle, name, cidr string) netlink.Link {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	up(ha, name, aCIDR)
	lb := up(hb, "uplink", bCIDR)
	gw := strings.SplitN(aCIDR, "/", 2)[0]
	if err := hb.RouteAdd(&netlink.Route{LinkIndex: lb.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatal(err)
	}
}

// Start runs a command inside the namespace (through nsenter) and kills it
// when the test ends.
func Start(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// Run runs a command inside the namespace and returns its combined output.
func Run(ctx context.Context, path string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// Dialer dials from inside the namespace: the socket is created on a
// thread in it, then used from anywhere.
func Dialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := nsenter.Do(path, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// Listen opens a listener inside the namespace, closed at the end of the
// test.
func Listen(t testing.TB, path, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := nsenter.Do(path, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// ListenPacket is Listen for datagram sockets.
func ListenPacket(t testing.TB, path, network, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	err := nsenter.Do(path, func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
