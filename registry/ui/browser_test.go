package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const shotW, shotH = 1280, 900

// startChromium runs Debian's chromium headless with a throwaway profile
// and every background service off, and returns a DevTools client (over
// --remote-debugging-pipe: no port to find or expose) attached to a fresh
// page, and the listener the site under test must serve on. As root,
// chromium runs in a network namespace of its own with nothing but a
// loopback interface, where the listener was opened too: it cannot reach
// anything else even if a flag were missed.
func startChromium(t *testing.T) (*tab, net.Listener) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium): the browser test needs a real browser")
	}
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--remote-debugging-pipe", "--user-data-dir="+profile,
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
		"--disable-client-side-phishing-detection", "--disable-breakpad", "--no-pings", "--no-proxy-server",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--password-store=basic",
		"--window-size=1280,900", "--hide-scrollbars", "--force-color-profile=srgb", "--mute-audio", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	toBrowser, theirIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	theirOut, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser} // fds 3 and 4, as the pipe protocol wants
	ln, err := startIsolated(t, cmd)
	toBrowser.Close()
	fromBrowser.Close()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		theirIn.Close()
		// The group is the one chromium's launcher started (renderers, GPU
		// and zygote processes included); the profile goes after it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		theirOut.Close()
		if t.Failed() {
			t.Logf("chromium log:\n%s", log.String())
		}
	})
	return attachTab(t, newCDP(theirIn, theirOut)), ln
}

// startIsolated starts cmd and opens a loopback listener, both in a new
// network namespace with only "lo" when the test runs as root, else in the
// test's own. The namespace lives as long as chromium and the listener.
func startIsolated(t *testing.T, cmd *exec.Cmd) (net.Listener, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: chromium shares the test's network, confined by its flags alone")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return net.Listen("tcp", "127.0.0.1:0")
	}
	type started struct {
		ln  net.Listener
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// Never unlocked: the thread, in the new namespace, exits with
		// this goroutine instead of returning to the scheduler's pool.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- started{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		if err := loopbackUp(); err != nil {
			ch <- started{err: err}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ch <- started{err: err}
			return
		}
		// A child forked from this thread is born in its namespace.
		if err := cmd.Start(); err != nil {
			ln.Close()
			ch <- started{err: err}
			return
		}
		ch <- started{ln: ln}
	}()
	r := <-ch
	return r.ln, r.err
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// syncBuffer collects chromium's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// attachTab opens a page and attaches to it with a flat session.
func attachTab(t *testing.T, c *cdp) *tab {
	t.Helper()
	ctx := t.Context()
	var target struct{ TargetID string }
	if err := c.call(ctx, "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var att struct{ SessionID string }
	if err := c.call(ctx, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	c.session = att.SessionID
	tb := &tab{t: t, c: c, loads: make(chan struct{}, 16)}
	go tb.events()
	for _, m := range []struct {
		method string
		params any
	}{
		{"Page.enable", nil},
		{"Emulation.setDeviceMetricsOverride", map[string]any{"width": shotW, "height": shotH, "deviceScaleFactor": 1, "mobile": false}},
		{"Emulation.setFocusEmulationEnabled", map[string]any{"enabled": true}},
	} {
		if err := c.call(ctx, m.method, m.params, nil); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

// tab is a page driven over DevTools. Dialogs (the delete confirmation,
// or an alert that escaping let through) are recorded and accepted.
type tab struct {
	t       *testing.T
	c       *cdp
	loads   chan struct{}
	mu      sync.Mutex
	dialogs []string
}

func (b *tab) events() {
	for m := range b.c.events {
		switch m.Method {
		case "Page.loadEventFired":
			b.loads <- struct{}{}
		case "Page.javascriptDialogOpening":
			var p struct{ Message, Type string }
			json.Unmarshal(m.Params, &p) // a dialog without a message is still recorded
			b.mu.Lock()
			b.dialogs = append(b.dialogs, p.Type+": "+p.Message)
			b.mu.Unlock()
			go b.c.call(context.Background(), "Page.handleJavaScriptDialog", map[string]any{"accept": true}, nil)
		}
	}
}

func (b *tab) takeDialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.dialogs
	b.dialogs = nil
	return d
}

// load runs trigger and waits for the page it causes to load.
func (b *tab) load(trigger func()) {
	b.t.Helper()
	for len(b.loads) > 0 {
		<-b.loads
	}
	trigger()
	select {
	case <-b.loads:
	case <-time.After(30 * time.Second):
		b.t.Fatal("page did not load within 30 s")
	}
}

func (b *tab) navigate(url string) {
	b.t.Helper()
	b.load(func() {
		var res struct{ ErrorText string }
		if err := b.c.call(b.t.Context(), "Page.navigate", map[string]any{"url": url}, &res); err != nil || res.ErrorText != "" {
			b.t.Fatalf("navigate %s: %v %s", url, err, res.ErrorText)
		}
	})
}

// eval evaluates JavaScript in the page and returns its value as JSON.
func (b *tab) eval(js string) string {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		}
		ExceptionDetails *struct{ Text string }
	}
	if err := b.c.call(b.t.Context(), "Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		b.t.Fatalf("eval %q: %v", js, err)
	}
	if res.ExceptionDetails != nil {
		b.t.Fatalf("eval %q: %s", js, res.ExceptionDetails.Text)
	}
	return string(res.Result.Value)
}

// evalString evaluates an expression whose value is a string.
func (b *tab) evalString(js string) string {
	b.t.Helper()
	var s string
	if err := json.Unmarshal([]byte(b.eval(js)), &s); err != nil {
		b.t.Fatalf("eval %q: not a string: %v", js, err)
	}
	return s
}

func (b *tab) dom() string {
	b.t.Helper()
	return b.evalString("document.documentElement.outerHTML")
}

// screenshot captures the viewport, checks it is a real rendering of a
// styled page, and keeps it in dir.
func (b *tab) screenshot(dir, name string) {
	b.t.Helper()
	var res struct{ Data string }
	if err := b.c.call(b.t.Context(), "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		b.t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.t.Fatalf("%s: not a PNG: %v", name, err)
	}
	checkRendering(b.t, name, img)
}

// checkRendering: the right size, many colours (text is antialiased), a
// good share of pixels off the background, and the header bar in the
// stylesheet's colour (so the CSS loaded under the page's CSP).
func checkRendering(t *testing.T, name string, img image.Image) {
	t.Helper()
	bnd := img.Bounds()
	if bnd.Dx() != shotW || bnd.Dy() != shotH {
		t.Errorf("%s: %dx%d, want %dx%d", name, bnd.Dx(), bnd.Dy(), shotW, shotH)
	}
	colours := map[[3]uint32]int{}
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 2 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	total, top := bnd.Dx()*bnd.Dy()/4, 0
	for _, n := range colours {
		top = max(top, n)
	}
	if len(colours) < 40 || float64(total-top)/float64(total) < 0.03 {
		t.Errorf("%s: looks blank: %d colours, %.1f%% off the background", name, len(colours), 100*float64(total-top)/float64(total))
	}
	r, g, bl, _ := img.At(4, 4).RGBA()
	if r>>8 > 40 || g>>8 > 55 || bl>>8 < 40 || bl>>8 > 80 {
		t.Errorf("%s: header pixel rgb(%d,%d,%d), want the stylesheet's #14233c", name, r>>8, g>>8, bl>>8)
	}
}

// TestBrowser drives the UI in headless chromium: anonymous browsing,
// sign-in, tags, an index and an image, the copy button, deleting a tag
// through its confirmation, a 403 for another account, and sign-out, with
// a screenshot of each page checked.
func TestBrowser(t *testing.T) {
	t.Parallel()
	b, ln := startChromium(t)
	s := newSite(t, false, onListener(ln))
	f := s.fixtures()
	shots := t.TempDir()
	if d := os.Getenv("BERTH_UI_SCREENSHOTS"); d != "" {
		shots = d // to refresh docs/registry-ui/
	}
	u := s.url
	if os.Geteuid() == 0 {
		confined(t, b, ln)
	}

	b.navigate(u + "/ui/")
	b.screenshot(shots, "01-anonymous.png")
	wantDOM(t, "anonymous", b.dom(), []string{"pub", "Sign in"}, []string{"alice", "team/"})
	if c := b.evalString(`(s => s.color + " on " + s.backgroundColor)(getComputedStyle(document.getElementById("signin")))`); c != "rgb(29, 35, 48) on rgb(255, 255, 255)" {
		t.Errorf("sign-in button colours: %s", c)
	}

	b.navigate(u + "/ui/login?next=/ui/repo/alice/app")
	b.eval(`document.getElementById("username").value = "alice"; document.getElementById("password").value = "alice-pw"`)
	b.screenshot(shots, "02-sign-in.png")
	b.load(func() { b.eval(`document.querySelector("#login button[type=submit]").click()`) })
	if loc := b.eval("location.pathname"); loc != `"/ui/repo/alice/app"` {
		t.Fatalf("after sign-in at %s", loc)
	}
	if c := b.eval("document.cookie"); c != `""` {
		t.Errorf("session cookie readable from JavaScript: %s", c)
	}
	b.screenshot(shots, "03-tags.png")
	wantDOM(t, "tags", b.dom(), []string{"signed in as", "alice", "multi", "linux/amd64, linux/arm64/v8", ">Delete<"}, nil)

	b.navigate(u + "/ui/repo/alice/app/-/manifests/multi")
	b.screenshot(shots, "04-index.png")
	wantDOM(t, "index", b.dom(), []string{"linux/arm64/v8", "attestation-manifest", "application/spdx+json",
		"application/vnd.dev.cosign.artifact.sig.v1+json", f.multi.Digest.String()}, nil)

	imagePage(t, b, s, shots)
}

// imagePage: the image page shows its data, runs no planted markup, copies
// the pull command, deletes the tag through the confirmation; then another
// account gets a 403.
func imagePage(t *testing.T, b *tab, s *site, shots string) {
	u := s.url
	b.navigate(u + "/ui/repo/alice/app/-/manifests/v1")
	b.screenshot(shots, "05-image.png")
	dom := b.dom()
	wantDOM(t, "image", dom, []string{"Layers", "ADD rootfs.tar", "demo app", `["/bin/app"]`, "GREETING=", "History",
		"docker pull 127.0.0.1"}, nil)
	// The planted markup is text: one script element (app.js), no img,
	// and no alert ran.
	if n := b.eval(`document.scripts.length + "/" + document.images.length`); n != `"1/0"` {
		t.Errorf("scripts/images in the page: %s", n)
	}
	if !strings.Contains(b.evalString(`document.getElementById("labels").textContent`), `<script>alert("x")</script>`) {
		t.Error("label text not shown verbatim")
	}
	if d := b.takeDialogs(); len(d) > 0 {
		t.Errorf("dialogs opened by page content: %q", d)
	}

	if err := b.c.call(t.Context(), "Browser.grantPermissions", map[string]any{"origin": u,
		"permissions": []string{"clipboardReadWrite", "clipboardSanitizedWrite"}}, nil); err != nil {
		t.Fatal(err)
	}
	b.eval(`document.getElementById("copy-tag").click()`)
	time.Sleep(200 * time.Millisecond)
	if got := b.eval(`navigator.clipboard.readText()`); !strings.Contains(got, "docker pull 127.0.0.1:") || !strings.HasSuffix(got, `/alice/app:v1"`) {
		t.Errorf("clipboard after copy: %s", got)
	}

	b.load(func() { b.eval(`document.getElementById("delete").click()`) })
	if d := b.takeDialogs(); len(d) != 1 || d[0] != "confirm: Delete tag v1?" {
		t.Errorf("confirmation dialogs: %q", d)
	}
	b.screenshot(shots, "06-deleted.png")
	wantDOM(t, "after delete", b.dom(), []string{"Tag <code>v1</code> deleted."}, []string{"/ui/repo/alice/app/-/manifests/v1"})
	if w := s.api("GET", "/v2/alice/app/manifests/v1", "", nil); w.Code != 404 {
		t.Errorf("API still has the deleted tag: %d", w.Code)
	}

	signOutAndForbidden(t, b, u, shots)
}

func signOutAndForbidden(t *testing.T, b *tab, u, shots string) {
	b.load(func() { b.eval(`document.getElementById("logout").click()`) })
	wantDOM(t, "signed out", b.dom(), []string{"Sign in", "anonymous"}, []string{"signed in as"})
	b.navigate(u + "/ui/login")
	b.eval(`document.getElementById("username").value = "bob"; document.getElementById("password").value = "bob-pw"`)
	b.load(func() { b.eval(`document.querySelector("#login button[type=submit]").click()`) })
	b.navigate(u + "/ui/repo/alice/app/-/manifests/multi")
	b.screenshot(shots, "07-forbidden.png")
	wantDOM(t, "forbidden", b.dom(), []string{"403 Forbidden", "Your account (bob) may not view manifests in repository alice/app."},
		[]string{"linux/arm64", "spdx"})
}

// confined: a server on the test's own loopback is out of chromium's
// reach (another network namespace).
func confined(t *testing.T, b *tab, ln net.Listener) {
	t.Helper()
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("chromium reached the test's network: %s %s", r.Method, r.URL)
	}))
	defer outside.Close()
	if strings.HasSuffix(outside.URL, fmt.Sprintf(":%d", ln.Addr().(*net.TCPAddr).Port)) {
		return // the same port number in both namespaces: the check would prove nothing
	}
	var res struct{ ErrorText string }
	if err := b.c.call(t.Context(), "Page.navigate", map[string]any{"url": outside.URL}, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.ErrorText, "ERR_CONNECTION_REFUSED") {
		t.Errorf("navigating to the test's own loopback: %q, want a refused connection", res.ErrorText)
	}
}

func wantDOM(t *testing.T, what, dom string, has, hasNot []string) {
	t.Helper()
	for _, s := range has {
		if !strings.Contains(dom, s) {
			t.Errorf("%s: DOM lacks %q", what, s)
		}
	}
	for _, s := range hasNot {
		if strings.Contains(dom, s) {
			t.Errorf("%s: DOM shows %q", what, s)
		}
	}
}
