package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountsUnder lists what is mounted at or below dir in this (the daemon's)
// mount namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// mountsFormat prints a container's Mounts, "|" after each, in inspect's
// field order.
const mountsFormat = `{{range .Mounts}}{{.Type}} {{.Name}} {{.Source}} {{.Destination}} {{.Driver}} mode={{.Mode}} {{.RW}} prop={{.Propagation}}|{{end}}`

// seedImage commits an image whose /data holds a file owned by 1000:1000
// and is declared a VOLUME.
func seedImage(d *daemon, ref string) {
	d.t.Helper()
	d.must("run", "--name", "seed-"+strings.ReplaceAll(ref, ":", "-"), "busybox", "sh", "-c",
		"mkdir -p /data/sub && echo from-image > /data/sub/f && chown -R 1000:1000 /data && chmod 750 /data")
	d.must("commit", "-c", "VOLUME /data", "seed-"+strings.ReplaceAll(ref, ":", "-"), ref)
}

func TestVolumeNamedAndBind(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	vols := filepath.Join(d.DataRoot, "volumes")

	if out := d.must("volume", "create", "-d", "local", "--label", "tier=db", "dbdata"); out != "dbdata\n" {
		t.Fatalf("volume create: %q", out)
	}
	d.must("run", "--name", "writer", "-v", "dbdata:/data", "busybox", "sh", "-c", "echo one > /data/file; mkdir /data/dir")
	if got := d.must("run", "--rm", "-v", "dbdata:/data", "busybox", "cat", "/data/file"); got != "one\n" {
		t.Fatalf("next container reads %q", got)
	}
	if r := d.berth("run", "--rm", "-v", "dbdata:/data:ro", "busybox", "touch", "/data/file"); r.Code != 1 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("read-only volume: %s", r)
	}
	if diff := d.must("diff", "writer"); strings.Contains(diff, "/data/") {
		t.Fatalf("volume writes reached the writable layer:\n%s", diff)
	}
	id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "writer"))
	want := "volume dbdata " + filepath.Join(vols, "dbdata", "_data") + " /data local mode=z true prop=|\n"
	if got := d.must("inspect", "-f", mountsFormat, "writer"); got != want {
		t.Fatalf("inspect Mounts:\n%q\nwant\n%q", got, want)
	}
	if got := d.must("ps", "-a", "--filter", "name=writer", "--format", "{{.Mounts}} {{.LocalVolumes}}"); got != "dbdata 1\n" {
		t.Fatalf("ps mounts: %q", got)
	}
	for _, f := range []string{"volume=dbdata", "volume=/data"} {
		if got := d.must("ps", "-aq", "--filter", f); got != id[:12]+"\n" {
			t.Fatalf("ps --filter %s: %q", f, got)
		}
	}
	if got := d.must("ps", "-aq", "--filter", "volume=other"); got != "" {
		t.Fatalf("ps --filter volume=other: %q", got)
	}
	r := d.berth("volume", "rm", "dbdata")
	if r.Code != 1 || r.Stderr != "Error response from daemon: remove dbdata: volume is in use - ["+id+"]\n" {
		t.Fatalf("rm in use: %s", r)
	}
	d.must("rm", "writer")
	if got := d.must("run", "--rm", "-v", "dbdata:/data", "busybox", "cat", "/data/file"); got != "one\n" {
		t.Fatalf("data did not survive rm: %q", got)
	}
	if got := d.must("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Label \"tier\"}}"); got != "dbdata local db\n" {
		t.Fatalf("volume ls: %q", got)
	}
	d.must("volume", "rm", "dbdata")
	if _, err := os.Stat(filepath.Join(vols, "dbdata")); !os.IsNotExist(err) {
		t.Fatalf("removed volume's directory: %v", err)
	}

	// Binds: the host sees the writes; :ro refuses them; -v makes a
	// missing host directory.
	host := t.TempDir()
	d.must("run", "--name", "b1", "-v", host+":/h", "busybox", "sh", "-c", "echo from-container > /h/out")
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "from-container\n" {
		t.Fatalf("bind write: %q", b)
	}
	if diff := d.must("diff", "b1"); strings.Contains(diff, "/h/") {
		t.Fatalf("bind writes reached the writable layer:\n%s", diff)
	}
	if got := d.must("inspect", "-f", mountsFormat, "b1"); got != "bind  "+host+" /h  mode= true prop=rprivate|\n" {
		t.Fatalf("bind Mounts: %q", got)
	}
	r = d.berth("run", "--rm", "-v", host+":/h:ro,Z", "busybox", "touch", "/h/nope")
	if r.Code != 1 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("ro bind: %s", r)
	}
	fresh := filepath.Join(t.TempDir(), "made", "by", "run")
	d.must("run", "--rm", "-v", fresh+":/f", "busybox", "true")
	if fi, err := os.Stat(fresh); err != nil || !fi.IsDir() {
		t.Fatalf("-v did not create the host directory: %v", err)
	}
	if m := mountsUnder(t, d.DataRoot); len(m) != 0 {
		t.Fatalf("left mounted: %v", m)
	}
}

func TestVolumeCopyUp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	seedImage(d, "seeded:v1")

	// The image's VOLUME becomes an anonymous volume holding the image's
	// data, owners and modes kept.
	d.must("run", "--name", "anon", "seeded:v1", "sh", "-c", "stat -c '%A %u %g' /data; cat /data/sub/f")
	if got := d.must("logs", "anon"); got != "drwxr-x--- 1000 1000\nfrom-image\n" {
		t.Fatalf("anonymous volume content: %q", got)
	}
	name := strings.TrimSpace(d.must("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(name) {
		t.Fatalf("anonymous volume name %q", name)
	}
	if got := d.must("volume", "inspect", "-f", "{{json .Labels}}", name); got != `{"com.docker.volume.anonymous":""}`+"\n" {
		t.Fatalf("anonymous label: %q", got)
	}

	// A new named volume is filled once: emptied by its first container,
	// it stays empty for the next start and the next container.
	d.must("run", "--name", "c1", "-v", "named:/data", "seeded:v1", "sh", "-c", "ls /data; rm -rf /data/sub")
	if got := d.must("logs", "c1"); got != "sub\n" {
		t.Fatalf("copy-up into a named volume: %q", got)
	}
	d.must("start", "c1")
	d.must("wait", "c1")
	if got := d.must("logs", "c1"); got != "sub\n" {
		t.Fatalf("copied again at the next start: %q", got)
	}
	if got := d.must("run", "--rm", "-v", "named:/data", "seeded:v1", "ls", "-A", "/data"); got != "" {
		t.Fatalf("copied again into a volume: %q", got)
	}
	// nocopy leaves a new volume empty; a volume with content keeps it.
	if got := d.must("run", "--rm", "-v", "empty:/data:nocopy", "seeded:v1", "ls", "-A", "/data"); got != "" {
		t.Fatalf("nocopy: %q", got)
	}
	d.must("run", "--rm", "-v", "mine:/data", "busybox", "sh", "-c", "echo mine > /data/own")
	if got := d.must("run", "--rm", "-v", "mine:/data", "seeded:v1", "ls", "/data"); got != "own\n" {
		t.Fatalf("copy-up over existing content: %q", got)
	}
	// A tmpfs volume loses its content with its mount: each first user
	// gets the image's data again.
	for range 2 {
		got := d.must("run", "--rm", "--mount", "type=volume,src=tv,dst=/data,volume-opt=type=tmpfs,volume-opt=device=tmpfs", "seeded:v1", "cat", "/data/sub/f")
		if got != "from-image\n" {
			t.Fatalf("copy-up into a tmpfs volume: %q", got)
		}
	}
	// --rm takes the anonymous volume along; rm -v another's.
	before := d.must("volume", "ls", "-q")
	d.must("run", "--rm", "seeded:v1", "true")
	if after := d.must("volume", "ls", "-q"); after != before {
		t.Fatalf("--rm left an anonymous volume:\n%s\nwas\n%s", after, before)
	}
	d.must("rm", "-v", "anon")
	if strings.Contains(d.must("volume", "ls", "-q"), name) {
		t.Fatal("rm -v kept the anonymous volume")
	}
}

func TestVolumeMountFlags(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	vols := filepath.Join(d.DataRoot, "volumes")

	// A tmpfs-backed local volume is mounted while a container runs.
	d.must("run", "-d", "--name", "t1", "--mount", "type=volume,source=fast,target=/fast,volume-opt=type=tmpfs,volume-opt=device=tmpfs,\"volume-opt=o=size=2m,mode=0700\"",
		"busybox", "sleep", "1000")
	if got := d.must("exec", "t1", "sh", "-c", "df -k /fast | tail -1 | awk '{print $1, $2}'; stat -c %a /fast"); got != "tmpfs 2048\n700\n" {
		t.Fatalf("tmpfs volume: %q", got)
	}
	if m := mountsUnder(t, vols); len(m) != 1 || m[0] != filepath.Join(vols, "fast", "_data") {
		t.Fatalf("while running: %v", m)
	}
	if got := d.must("volume", "inspect", "-f", "{{.Options.type}} {{.Options.device}} {{.Options.o}}", "fast"); got != "tmpfs tmpfs size=2m,mode=0700\n" {
		t.Fatalf("volume options: %q", got)
	}
	d.must("rm", "-f", "t1")
	if m := mountsUnder(t, vols); len(m) != 0 {
		t.Fatalf("still mounted after the last user stopped: %v", m)
	}

	// A bind volume (type=none,o=bind) shows the host directory.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("host\n"), 0o644)
	d.must("volume", "create", "-o", "type=none", "-o", "device="+host, "-o", "o=bind", "hostvol")
	if got := d.must("run", "--rm", "-v", "hostvol:/v", "busybox", "cat", "/v/hello"); got != "host\n" {
		t.Fatalf("bind volume: %q", got)
	}
	d.must("volume", "rm", "hostvol")
	if _, err := os.Stat(filepath.Join(host, "hello")); err != nil {
		t.Fatalf("removing a bind volume touched the host directory: %v", err)
	}

	// volume-subpath mounts a directory of the volume.
	d.must("run", "--rm", "-v", "sp:/d", "busybox", "sh", "-c", "mkdir /d/sub && echo in-sub > /d/sub/f")
	if got := d.must("run", "--rm", "--mount", "type=volume,src=sp,dst=/s,volume-subpath=sub", "busybox", "cat", "/s/f"); got != "in-sub\n" {
		t.Fatalf("volume-subpath: %q", got)
	}

	// --mount bind readonly, tmpfs size and mode, --tmpfs.
	r := d.berth("run", "--rm", "--mount", "type=bind,source="+host+",target=/ro,readonly", "busybox", "touch", "/ro/x")
	if r.Code != 1 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("readonly bind: %s", r)
	}
	got := d.must("run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", "--tmpfs", "/t2:size=3m",
		"busybox", "sh", "-c", "df -k /t /t2 | tail -2 | awk '{print $2}'; stat -c %a /t")
	if got != "1024\n3072\n1770\n" {
		t.Fatalf("tmpfs mounts: %q", got)
	}

	// rshared: a mount made on the host later shows up in the container.
	shared := t.TempDir()
	if err := syscall.Mount(shared, shared, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(shared, syscall.MNT_DETACH) })
	if err := syscall.Mount("", shared, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	d.must("run", "-d", "--name", "p1", "--mount", "type=bind,source="+shared+",target=/s,bind-propagation=rshared", "busybox", "sleep", "1000")
	sub := filepath.Join(shared, "sub")
	os.Mkdir(sub, 0o755)
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sub, "late"), []byte("propagated\n"), 0o644)
	got = d.must("exec", "p1", "cat", "/s/sub/late")
	syscall.Unmount(sub, syscall.MNT_DETACH)
	if got != "propagated\n" {
		t.Fatalf("rshared: %q", got)
	}
	if got := d.must("inspect", "-f", mountsFormat, "p1"); got != "bind  "+shared+" /s  mode= true prop=rshared|\n" {
		t.Fatalf("rshared Mounts: %q", got)
	}
	r = d.berth("run", "--rm", "--mount", "type=bind,source="+host+",target=/s,bind-propagation=rshared", "busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "path "+host+" is mounted on / but it is not a shared mount") {
		t.Fatalf("rshared on a private mount: %s", r)
	}
}

func TestVolumesFromAndPrune(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("create", "--name", "store", "-v", "/anon", "-v", "keep:/keep", "busybox", "true")
	d.must("run", "--rm", "--volumes-from", "store", "busybox", "sh", "-c", "echo a > /anon/f; echo k > /keep/f")
	r := d.berth("run", "--rm", "--volumes-from", "store:ro", "busybox", "sh", "-c", "cat /anon/f /keep/f; touch /keep/g")
	if r.Code != 1 || r.Stdout != "a\nk\n" || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("--volumes-from :ro: %s", r)
	}
	d.must("create", "--name", "user", "--volumes-from", "store", "busybox", "true")
	anon := strings.TrimSpace(d.must("inspect", "-f", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`, "store"))
	// rm -v of one user keeps a volume another still uses.
	d.must("rm", "-v", "store")
	if ls := d.must("volume", "ls", "-q"); !strings.Contains(ls, anon) {
		t.Fatalf("rm -v removed a volume still in use: %s", ls)
	}
	r = d.berth("run", "--rm", "--volumes-from", "nosuch", "busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "No such container: nosuch") {
		t.Fatalf("--volumes-from a missing container: %s", r)
	}
	d.must("rm", "user")
	d.must("volume", "create", "--label", "keep=yes", "labelled")
	if got := d.must("volume", "ls", "-q", "--filter", "dangling=true"); got != anon+"\nkeep\nlabelled\n" {
		t.Fatalf("dangling: %q", got)
	}
	if got := d.must("volume", "prune", "-f"); got != "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 2B\n" {
		t.Fatalf("prune: %q", got)
	}
	if got := d.must("volume", "prune", "-a", "-f", "--filter", "label!=keep=yes"); got != "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 2B\n" {
		t.Fatalf("prune -a: %q", got)
	}
	if got := d.must("volume", "ls", "-q"); got != "labelled\n" {
		t.Fatalf("left: %q", got)
	}
	if got := d.must("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"); !strings.Contains(got, "Local Volumes 1 0\n") {
		t.Fatalf("system df: %q", got)
	}
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	got := d.must("events", "--since", "1", "--until", until, "--filter", "type=volume", "--filter", "volume=keep", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.destination}}")
	if got != "create keep <no value>\nmount keep /keep\nunmount keep <no value>\nmount keep /keep\nunmount keep <no value>\ndestroy keep <no value>\n" {
		t.Fatalf("volume events:\n%s", got)
	}
}

// TestVolumeErrors checks each bad input's message, and that a refused
// request leaves nothing mounted and no volume behind.
func TestVolumeErrors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	host := t.TempDir()
	d.must("volume", "create", "used")
	d.must("create", "--name", "holder", "-v", "used:/u", "busybox", "true")
	holder := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "holder"))
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"run", "--rm", "-v", "data/x:/x", "busybox", "true"}, 125,
			`Error response from daemon: create data/x: "data/x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{[]string{"run", "--rm", "--mount", "type=bind,source=rel,target=/x", "busybox", "true"}, 125,
			`Error response from daemon: invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{[]string{"run", "--rm", "--mount", "type=bind,source=/x-missing,target=/x", "busybox", "true"}, 125,
			`Error response from daemon: invalid mount config for type "bind": bind source path does not exist: /x-missing`},
		{[]string{"run", "--rm", "--volume-driver", "flocker", "-v", "fl:/x", "busybox", "true"}, 125,
			`Error response from daemon: create fl: error looking up volume plugin flocker: plugin "flocker" not found`},
		{[]string{"volume", "create", "-d", "flocker", "fl"}, 1,
			`Error response from daemon: create fl: error looking up volume plugin flocker: plugin "flocker" not found`},
		{[]string{"volume", "rm", "used"}, 1, "Error response from daemon: remove used: volume is in use - [" + holder + "]"},
		{[]string{"run", "--rm", "-v", host + ":/data", "-v", host + ":/data/again", "busybox", "true"}, 125,
			"Error response from daemon: invalid mount config: /data/again (source " + host + ") is inside /data (source " + host + "), which would loop: its mount point would be created within its own source"},
		{[]string{"run", "--rm", "-v", "/anon", "-v", "v1:/data", "-v", "v1:/data/sub", "busybox", "true"}, 125, "which would loop"},
		{[]string{"run", "--rm", "-v", "a1:/x", "--mount", "type=volume,source=a2,target=/x", "busybox", "true"}, 125,
			"Error response from daemon: Duplicate mount point: /x"},
		{[]string{"run", "--rm", "-v", "v1:/data:rw,ro", "busybox", "true"}, 125, "invalid mode: rw,ro"},
		{[]string{"volume", "create", "-o", "size=1g", "sized"}, 1, "Error response from daemon: create sized: quota size requested but no quota support"},
		{[]string{"volume", "inspect", "nope"}, 1, "Error response from daemon: get nope: no such volume"},
		{[]string{"run", "--rm", "-v", "/etc/passwd", "busybox", "true"}, 125, "cannot mount volume over existing file, file exists "},
		{[]string{"run", "--rm", "--mount", "type=volume,source=used,target=/u,volume-subpath=nope", "busybox", "true"}, 127, "cannot access path "},
		{[]string{"run", "--rm", "--mount", "type=volume,source=broken,target=/b,volume-opt=type=none,volume-opt=device=/no/such/dir,volume-opt=o=bind", "busybox", "true"}, 127,
			"failed to mount local volume"},
	}
	for _, tc := range cases {
		r := d.berth(tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.err) {
			t.Errorf("berth %v: want exit %d and %q; got %s", tc.args, tc.code, tc.err, r)
		}
	}
	if got := d.must("volume", "ls", "-q"); got != "broken\nused\n" {
		t.Fatalf("refused requests left volumes: %q", got)
	}
	if got := d.must("ps", "-aq", "--no-trunc"); got != holder+"\n" {
		t.Fatalf("refused requests left containers: %q", got)
	}
	if m := mountsUnder(t, d.DataRoot); len(m) != 0 {
		t.Fatalf("refused requests left mounts: %v", m)
	}
}

func TestVolumeDaemonRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "live", "-v", "state:/state", "--mount", "type=volume,source=fast,target=/fast,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
		"busybox", "sh", "-c", "echo kept > /fast/f; echo kept > /state/f; sleep 1000")
	d.must("create", "--name", "idle", "-v", "state:/state", "busybox", "true")
	waitFor(t, func() bool { return d.berth("exec", "live", "cat", "/fast/f").Stdout == "kept\n" })
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.start()
	// References and the running container's use of its volumes survive.
	if r := d.berth("volume", "rm", "state", "fast"); r.Code != 1 || strings.Count(r.Stderr, "volume is in use") != 2 {
		t.Fatalf("rm after restart: %s", r)
	}
	if got := d.must("exec", "live", "cat", "/fast/f", "/state/f"); got != "kept\nkept\n" {
		t.Fatalf("after restart: %q", got)
	}
	// Another user of the tmpfs volume shares the same mount.
	if got := d.must("run", "--rm", "-v", "fast:/fast", "busybox", "cat", "/fast/f"); got != "kept\n" {
		t.Fatalf("second user of a restored tmpfs volume: %q", got)
	}
	d.must("rm", "-f", "live", "idle")
	if m := mountsUnder(t, filepath.Join(d.DataRoot, "volumes")); len(m) != 0 {
		t.Fatalf("left mounted: %v", m)
	}
	d.must("volume", "rm", "state", "fast")
}

// TestDockerCLIVolumes drives the same flows with the stock docker CLI and
// compares what both CLIs print.
func TestDockerCLIVolumes(t *testing.T) {
	t.Parallel()
	dockerCLI(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if r := d.docker("volume", "create", "--label", "app=web", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "dk1"); r.Code != 0 || r.Stdout != "dk1\n" {
		t.Fatalf("docker volume create: %s", r)
	}
	d.docker("volume", "create", "dk2")
	if r := d.docker("run", "--rm", "-v", "dk2:/d", "busybox", "sh", "-c", "echo hi > /d/f"); r.Code != 0 {
		t.Fatalf("docker run -v: %s", r)
	}
	if r := d.docker("run", "--rm", "--mount", "type=volume,src=dk2,dst=/d,readonly", "busybox", "cat", "/d/f"); r.Stdout != "hi\n" {
		t.Fatalf("docker run --mount: %s", r)
	}
	host := t.TempDir()
	if r := d.docker("run", "--rm", "--mount", "type=bind,src="+host+",dst=/h", "-v", "/anon", "--tmpfs", "/t", "busybox", "sh", "-c", "echo x > /h/x"); r.Code != 0 {
		t.Fatalf("docker run bind: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "x")); string(b) != "x\n" {
		t.Fatalf("bind through docker: %q", b)
	}
	d.docker("create", "--name", "holder", "-v", "dk2:/d", "busybox", "true")
	for _, args := range [][]string{
		{"volume", "ls"},
		{"volume", "ls", "-q", "--filter", "dangling=true"},
		{"volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}"},
		{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Options}} {{.Scope}}", "dk1", "dk2"},
		{"volume", "inspect", "nope"},
		{"volume", "rm", "dk2"},
		{"inspect", "-f", mountsFormat, "holder"},
		{"run", "--rm", "--mount", "type=bind,source=/x-missing,target=/x", "busybox", "true"},
		{"volume", "create", "-d", "flocker", "x1"},
	} {
		b, k := d.berth(args...), d.docker(args...)
		if normalise(b.Stdout) != normalise(k.Stdout) || b.Code != k.Code || normalise(b.Stderr) != normalise(k.Stderr) {
			t.Errorf("%v differs:\nberth: %s\ndocker: %s", args, b, k)
		}
	}
	// Copy-up, --volumes-from and rm -v through the docker CLI.
	if r := d.docker("run", "--name", "dseed", "busybox", "sh", "-c", "mkdir /data && echo seeded > /data/f"); r.Code != 0 {
		t.Fatalf("docker run: %s", r)
	}
	if r := d.docker("commit", "-c", "VOLUME /data", "dseed", "dvol:1"); r.Code != 0 {
		t.Fatalf("docker commit: %s", r)
	}
	if r := d.docker("run", "--name", "dk", "dvol:1", "cat", "/data/f"); r.Stdout != "seeded\n" {
		t.Fatalf("docker run of an image with a VOLUME: %s", r)
	}
	if r := d.docker("run", "--rm", "--volumes-from", "dk:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/x"); r.Code != 1 || r.Stdout != "seeded\n" {
		t.Fatalf("docker run --volumes-from: %s", r)
	}
	before := len(strings.Fields(d.docker("volume", "ls", "-q").Stdout))
	if r := d.docker("rm", "-v", "dk"); r.Code != 0 {
		t.Fatalf("docker rm -v: %s", r)
	}
	if after := len(strings.Fields(d.docker("volume", "ls", "-q").Stdout)); after != before-1 {
		t.Fatalf("docker rm -v: %d volumes, was %d", after, before)
	}
	if r := d.docker("rm", "-v", "holder"); r.Code != 0 {
		t.Fatalf("docker rm -v: %s", r)
	}
	if r := d.docker("volume", "prune", "-a", "-f"); r.Code != 0 || !strings.Contains(r.Stdout, "Deleted Volumes:\n") || !strings.Contains(r.Stdout, "dk2\n") {
		t.Fatalf("docker volume prune: %s", r)
	}
	if r := d.docker("system", "df"); r.Code != 0 || !strings.Contains(r.Stdout, "Local Volumes   0 ") {
		t.Fatalf("docker system df: %s", r)
	}
}

// TestVolumeCp copies into and out of volume and bind paths of a running
// and a stopped container: the copy goes to the volume, as the container
// sees it, never to the writable layer under the mount point.
func TestVolumeCp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	host := t.TempDir()
	src := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(src, []byte("copied\n"), 0o644)
	d.must("run", "-d", "--name", "live", "-v", "cpvol:/data", "-v", host+":/h", "-v", "rovol:/ro:ro",
		"--mount", "type=volume,source=fast,target=/fast,volume-opt=type=tmpfs,volume-opt=device=tmpfs", "busybox", "sleep", "1000")
	for _, dst := range []string{"live:/data/", "live:/h/", "live:/fast/"} {
		d.must("cp", src, dst)
	}
	if got := d.must("exec", "live", "cat", "/data/in.txt", "/h/in.txt", "/fast/in.txt"); got != "copied\ncopied\ncopied\n" {
		t.Fatalf("inside the container: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "in.txt")); string(b) != "copied\n" {
		t.Fatalf("bind source: %q", b)
	}
	if r := d.berth("cp", src, "live:/ro/"); r.Code == 0 {
		t.Fatalf("cp into a read-only volume: %s", r)
	}
	if diff := d.must("diff", "live"); strings.Contains(diff, "in.txt") {
		t.Fatalf("cp wrote into the writable layer:\n%s", diff)
	}
	if m := mountsUnder(t, filepath.Join(d.DataRoot, "containers")); len(m) != 1 {
		t.Fatalf("cp left mounts behind: %v", m) // only the live rootfs
	}
	d.must("stop", "-t", "0", "live")
	out := t.TempDir()
	d.must("cp", "live:/data/in.txt", out)
	if b, _ := os.ReadFile(filepath.Join(out, "in.txt")); string(b) != "copied\n" {
		t.Fatalf("cp out of a stopped container's volume: %q", b)
	}
	if m := mountsUnder(t, d.DataRoot); len(m) != 0 {
		t.Fatalf("left mounted: %v", m)
	}
}
