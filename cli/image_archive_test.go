package cli

import (
	"archive/tar"
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"

	"golang.org/x/sys/unix"
)

// startArchiveDaemon serves the in-memory archive backend.
func startArchiveDaemon(t *testing.T, a *apitest.Archives) string {
	t.Helper()
	imgs := apitest.NewImages(time.Now, fixtureImages(time.Now())...)
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Images: imgs, System: &apitest.System{Images: imgs}, ImageArchive: a}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

func newArchives() *apitest.Archives {
	return &apitest.Archives{Known: map[string]string{"busybox:latest": busyboxID, "berth-multi:latest": multiID}}
}

func toyTar(t *testing.T, names ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(busyboxID))})
		io.WriteString(tw, busyboxID)
	}
	tw.Close()
	return buf.String()
}

func tarEntries(t *testing.T, s string) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(strings.NewReader(s))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return strings.Join(names, " ")
		}
		if err != nil {
			t.Fatalf("not a tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

func TestSaveCommand(t *testing.T) {
	t.Parallel()
	a := newArchives()
	host := startArchiveDaemon(t, a)
	dir := t.TempDir()

	out, errOut, code := run(t, host, nil, "save", "busybox:latest", "berth-multi:latest")
	if code != 0 || errOut != "" || tarEntries(t, out) != "busybox:latest berth-multi:latest" {
		t.Fatalf("save to stdout: %d %q %q", code, errOut, tarEntries(t, out))
	}
	target := filepath.Join(dir, "out.tar")
	os.WriteFile(target, []byte("old"), 0o644)
	if _, errOut, code := run(t, host, nil, "image", "save", "-o", target, "busybox:latest"); code != 0 || errOut != "" {
		t.Fatalf("image save -o: %d %q", code, errOut)
	}
	st, err := os.Stat(target)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(target); tarEntries(t, string(b)) != "busybox:latest" {
		t.Fatalf("saved file holds %q", b)
	}

	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"save", "nope"}, "Error response from daemon: No such image: nope\n", 1},
		{[]string{"save", "-o", filepath.Join(dir, "missing", "x.tar"), "busybox:latest"}, "failed to save image: invalid output path: stat " + filepath.Join(dir, "missing") + ": no such file or directory\n", 1},
		{[]string{"save", "-o", filepath.Join(target, "x.tar"), "busybox:latest"}, "failed to save image: invalid output path: stat " + target + ": not a directory\n", 1},
		{[]string{"save", "-o", dir, "busybox:latest"}, "failed to save image: cannot write to a directory\n", 1},
		{[]string{"save", "-o", "/dev/null", "busybox:latest"}, "failed to save image: cannot write to a character device file\n", 1},
		{[]string{"save"}, "berth: 'berth save' requires at least 1 argument\n\nUsage:  berth save [OPTIONS] IMAGE [IMAGE...]\n\nSee 'berth save --help' for more information\n", 1},
	}
	for _, tc := range cases {
		if _, errOut, code := run(t, host, nil, tc.args...); errOut != tc.want || code != tc.code {
			t.Errorf("%q: exit %d, stderr %q; want %d %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("failed saves left files: %v", entries)
	}
}

// TestSaveFailureLeavesNoFile cuts the daemon's stream half-way: the
// command fails and neither the target nor a temporary file remains.
func TestSaveFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	a := newArchives()
	a.FailAfter = 1000
	host := startArchiveDaemon(t, a)
	dir := t.TempDir()
	_, errOut, code := run(t, host, nil, "save", "-o", filepath.Join(dir, "x.tar"), "busybox:latest")
	if code != 1 || !strings.Contains(errOut, "unexpected EOF") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestLoadCommand(t *testing.T) {
	t.Parallel()
	host := startArchiveDaemon(t, newArchives())
	arc := filepath.Join(t.TempDir(), "in.tar")
	os.WriteFile(arc, []byte(toyTar(t, "app:v1")), 0o600)
	untagged := "Loaded image ID: " + busyboxID + "\n"
	cases := []struct {
		args  []string
		stdin string
		out   string
		err   string
		code  int
	}{
		{[]string{"load"}, toyTar(t, "busybox:latest", "-"), "Loaded image: busybox:latest\n" + untagged, "", 0},
		{[]string{"image", "load", "-i", arc}, "", "Loaded image: app:v1\n", "", 0},
		{[]string{"load", "-q", "-i", arc}, "", "Loaded image: app:v1\n", "", 0},
		{[]string{"load", "-i", "/nonexistent.tar"}, "", "", "open /nonexistent.tar: no such file or directory\n", 1},
		{[]string{"load"}, toyTar(t, "bad"), "", "Error response from daemon: load: manifest.json: unexpected end of JSON input: invalid argument\n", 1},
		{[]string{"load"}, toyTar(t, "app:v1", "fail"), "", "Error response from daemon: load: layer sha256:51280dabfbc880cdc5f92cc2f4f22c8032de5aba401c3268250a11eeb2df1f73: content does not match the config's diff ID: invalid argument\n", 1},
		{[]string{"load", "extra"}, "", "", "berth: 'berth load' accepts no arguments\n\nUsage:  berth load [OPTIONS]\n\nRun 'berth load --help' for more information\n", 1},
	}
	for _, tc := range cases {
		out, errOut, code := run(t, host, strings.NewReader(tc.stdin), tc.args...)
		if out != tc.out || errOut != tc.err || code != tc.code {
			t.Errorf("%q: exit %d\nstdout %q\nstderr %q", tc.args, code, out, errOut)
		}
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 160}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestArchiveCommandsOnATerminal checks what only happens on a terminal:
// save refuses to write a tar to it, load refuses to wait for one on
// stdin, and load draws progress bars in place.
func TestArchiveCommandsOnATerminal(t *testing.T) {
	t.Parallel()
	host := startArchiveDaemon(t, newArchives())
	master, tty := openPTY(t)
	var errOut bytes.Buffer
	if code := Main([]string{"-H", host, "save", "busybox:latest"}, strings.NewReader(""), tty, &errOut); code != 1 ||
		errOut.String() != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Fatalf("save to a terminal: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := Main([]string{"-H", host, "load"}, tty, io.Discard, &errOut); code != 1 ||
		errOut.String() != "requested load from stdin, but stdin is empty\n" {
		t.Fatalf("load from a terminal: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := Main([]string{"-H", host, "load"}, strings.NewReader(toyTar(t, "busybox:latest")), tty, &errOut); code != 0 {
		t.Fatalf("load to a terminal: %d %q", code, errOut.String())
	}
	tty.Close()
	screen, _ := io.ReadAll(master) // ends with EIO once the slave is closed
	got := strings.ReplaceAll(string(screen), "\r\n", "\n")
	layer := "3726e854f7e1"
	for _, want := range []string{
		"\x1b[2K\r" + layer + ": Loading layer [================>                                  ]  1.049MB/3.146MB\r",
		"\x1b[2K\r" + layer + ": Loading layer [==================================================>]  3.146MB/3.146MB\r",
		"Loaded image: busybox:latest\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("terminal output lacks %q:\n%q", want, got)
		}
	}
}

// TestArchiveDockerParity runs the stock docker CLI and berth against the
// same server for save and load and compares what they print and return.
func TestArchiveDockerParity(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; parity cannot be checked")
	}
	dir := t.TempDir()
	arc := filepath.Join(dir, "in.tar")
	os.WriteFile(arc, []byte(toyTar(t, "app:v1", "-")), 0o600)
	cases := []struct {
		args  []string
		stdin string
	}{
		{args: []string{"save", "nope"}},
		{args: []string{"save", "-o", filepath.Join(dir, "missing", "x.tar"), "busybox:latest"}},
		{args: []string{"save", "-o", dir, "busybox:latest"}},
		{args: []string{"save", "-o", "/dev/null", "busybox:latest"}},
		{args: []string{"image", "save"}},
		{args: []string{"load", "-i", arc}},
		{args: []string{"image", "load", "-q"}, stdin: toyTar(t, "busybox:latest")},
		{args: []string{"load", "-i", filepath.Join(dir, "nope.tar")}},
		{args: []string{"load"}, stdin: toyTar(t, "bad")},
		{args: []string{"load", "extra"}},
	}
	for _, tc := range cases {
		host := startArchiveDaemon(t, newArchives())
		cmd := exec.Command(docker, append([]string{"-H", host}, tc.args...)...)
		cmd.Env = []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir()}
		cmd.Stdin = strings.NewReader(tc.stdin)
		var dout, derr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &dout, &derr
		if err := cmd.Run(); err != nil && cmd.ProcessState.ExitCode() < 0 {
			t.Fatalf("docker %q: %v", tc.args, err)
		}
		bout, berr, bcode := run(t, host, strings.NewReader(tc.stdin), tc.args...)
		norm := func(s string) string { return strings.ReplaceAll(s, "docker", "berth") }
		if norm(dout.String()) != bout || norm(derr.String()) != berr || cmd.ProcessState.ExitCode() != bcode {
			t.Errorf("%q differs\ndocker (%d):\n%s%s\nberth (%d):\n%s%s", tc.args, cmd.ProcessState.ExitCode(), dout.String(), derr.String(), bcode, bout, berr)
		}
	}
}
