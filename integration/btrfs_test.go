package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"berth/snapshot/btrfs/btrfstest"
	"berth/snapshot/storage"
)

// startBtrfsDaemon runs a daemon with --storage-driver btrfs whose data
// root is a loop-mounted btrfs of its own; the filesystem goes after the
// daemon has stopped.
func startBtrfsDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	root := filepath.Join(btrfstest.Mount(t, 1<<30), "data")
	return startDaemon(t, "--storage-driver", "btrfs", "--data-root", root), root
}

// TestBtrfsImageFlows runs the image commands on the btrfs driver: each
// layer is a read-only subvolume, and sizes are what the layers hold.
func TestBtrfsImageFlows(t *testing.T) {
	t.Parallel()
	d, root := startBtrfsDaemon(t)
	id := d.importBusybox("busybox:latest")
	short := id[7:19]

	if got := strings.TrimSpace(d.must("info", "--format", "{{.Driver}} {{.DriverStatus}}")); !strings.HasPrefix(got, "btrfs [[Backing Filesystem btrfs] [Supports d_type true] [Layers 1]") {
		t.Fatalf("info: %q", got)
	}
	rows := fields(d.must("images"))
	if len(rows) != 2 || rows[1][0] != "busybox" || rows[1][2] != short {
		t.Fatalf("images: %q", rows)
	}
	d.must("tag", "busybox", "other:v1")
	if got := fields(d.must("images", "-q")); len(got) != 2 || got[0][0] != short || got[1][0] != short {
		t.Fatalf("images -q after tag: %q", got)
	}
	if hist := d.must("history", "busybox"); !strings.Contains(hist, "Imported from -") {
		t.Fatalf("history: %s", hist)
	}

	// The image's size is the layer's data, which for a base layer is
	// what du counts on its subvolume.
	size, err := strconv.ParseInt(strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Size}}", "busybox")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	du, err := storage.DiskUsage(context.Background(), filepath.Join(root, "snapshots", "btrfs", "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image size %d, du %d", size, du.Size)
	if size <= 0 || size > du.Size || size < du.Size*9/10 {
		t.Errorf("image size %d, du of the layer %d: want within 10%%", size, du.Size)
	}
	if df := d.must("system", "df", "-v"); !strings.Contains(df, short) {
		t.Errorf("system df -v lacks the image:\n%s", df)
	}
	subvols := listSubvolumes(t, root)
	if len(subvols) != 1 {
		t.Fatalf("subvolumes with one layer: %q", subvols)
	}

	d.importBusybox("busybox:latest") // same layer: no new subvolume
	if got := listSubvolumes(t, root); len(got) != 1 {
		t.Fatalf("subvolumes after importing the same layer again: %q", got)
	}
	d.must("rmi", "other:v1")
	if out := d.must("image", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("prune: %q", out)
	}
	d.must("rmi", "busybox")
	if got := strings.TrimSpace(d.must("images", "-aq")); got != "" {
		t.Fatalf("images after rmi: %q", got)
	}
	if got := listSubvolumes(t, root); len(got) != 0 {
		t.Fatalf("subvolumes after removing every image: %q", got)
	}
}

// listSubvolumes names the subvolumes under root, as btrfs-progs sees them.
func listSubvolumes(t *testing.T, root string) []string {
	t.Helper()
	out, err := exec.Command("btrfs", "subvolume", "list", root).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs subvolume list: %v: %s", err, out)
	}
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[len(f)-1])
		}
	}
	return paths
}

// TestBtrfsNeedsBtrfs: on a data root that is not btrfs the daemon refuses
// to start and says what to do.
func TestBtrfsNeedsBtrfs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if fs, _ := storage.FilesystemName(dir); fs == "btrfs" {
		t.Skip("the temporary directory is on btrfs")
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, nil, berthBin, "daemon", "--storage-driver", "btrfs", "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "-H", "unix://"+filepath.Join(dir, "s.sock"), "--config-file", cfg)
	if r.Code == 0 || !strings.Contains(r.Stderr, "not btrfs") || !strings.Contains(r.Stderr, "overlay2") {
		t.Fatalf("daemon with btrfs on a non-btrfs root: %s", r)
	}
}
