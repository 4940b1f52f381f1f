// Package testutil holds what berth's tests share: the busybox fixture image
// built offline from Debian's busybox-static, and root checks.
package testutil

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// fixtureTime stamps every entry so the fixture's layer digest is the same
// on every machine with the same busybox binary.
var fixtureTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
`

// Applets lists the applets of a statically linked busybox binary.
func Applets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	var list []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			list = append(list, a)
		}
	}
	sort.Strings(list)
	return list, nil
}

// WriteBusyboxTar writes the busybox base image's root filesystem as a tar:
// /bin/busybox with every applet hard-linked beside it in /bin (as the
// official busybox image has them), /etc/passwd and /etc/group, and the
// usual empty directories.
func WriteBusyboxTar(w io.Writer, busybox string) error {
	applets, err := Applets(busybox)
	if err != nil {
		return err
	}
	bin, err := os.Open(busybox)
	if err != nil {
		return err
	}
	defer bin.Close()
	st, err := bin.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	dirs := []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"home/", 0o755}, {"proc/", 0o755},
		{"root/", 0o700}, {"sys/", 0o755}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/sbin/", 0o755},
		{"var/", 0o755}, {"var/spool/", 0o755}, {"var/spool/mail/", 0o755}, {"var/www/", 0o755}}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: fixtureTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: st.Size(), ModTime: fixtureTime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, bin); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "bin/" + a, Linkname: "bin/busybox", Mode: 0o755, ModTime: fixtureTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	// A fixed order: the layer's digest must not depend on map iteration.
	for _, f := range []struct{ name, body string }{{"etc/group", group}, {"etc/passwd", passwd}} {
		name, body := f.name, f.body
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: fixtureTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
	}
	return tw.Close()
}

// BusyboxTar writes the fixture rootfs tar into a temp file and returns its
// path, skipping the test when busybox-static is not installed.
func BusyboxTar(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("busybox-static not installed (%v): run `apt-get install busybox-static`", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "busybox-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteBusyboxTar(f, BusyboxPath); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// RequiresRoot skips a test that needs the kernel's privileged features.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root: mounts, namespaces and snapshots are kernel features")
	}
}
