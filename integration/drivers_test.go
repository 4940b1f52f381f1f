package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// containerFlows is the representative subset of container, commit and
// export/import flows every storage driver must pass.
func containerFlows(t *testing.T, d *daemon) {
	t.Helper()
	d.importBusybox("busybox:latest")
	d.must("run", "--name", "c1", "busybox", "sh", "-c", "echo data > /file && rm /etc/passwd && mkdir -p /etc/new && echo n > /etc/new/x")
	diff := d.must("diff", "c1")
	for _, want := range []string{"A /file", "D /etc/passwd", "A /etc/new"} {
		if !strings.Contains(diff, want+"\n") {
			t.Fatalf("diff lacks %q:\n%s", want, diff)
		}
	}
	d.must("commit", "c1", "flows:v1")
	if got := d.must("run", "--rm", "flows:v1", "sh", "-c", "cat /file /etc/new/x; test -e /etc/passwd && echo passwd-is-back; true"); got != "data\nn\n" {
		t.Fatalf("run the commit: %q", got)
	}
	// export | import round-trips the container's filesystem.
	tarPath := filepath.Join(t.TempDir(), "c1.tar")
	d.must("export", "-o", tarPath, "c1")
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := d.berthIn(f, "import", "-", "flows:imported"); r.Code != 0 {
		t.Fatalf("import the export: %s", r)
	}
	if got := d.must("run", "--rm", "flows:imported", "cat", "/file"); got != "data\n" {
		t.Fatalf("run the imported export: %q", got)
	}
	// save | rmi | load brings the commit back intact.
	saved := filepath.Join(t.TempDir(), "flows.tar")
	d.must("save", "-o", saved, "flows:v1")
	d.must("rm", "c1")
	d.must("rmi", "flows:v1", "flows:imported")
	if out := d.must("load", "-q", "-i", saved); !strings.Contains(out, "Loaded image: flows:v1") {
		t.Fatalf("load: %q", out)
	}
	if got := d.must("run", "--rm", "flows:v1", "cat", "/file"); got != "data\n" {
		t.Fatalf("run the loaded image: %q", got)
	}
}

func TestContainerFlowsVFS(t *testing.T) {
	t.Parallel()
	containerFlows(t, startDaemon(t, "--storage-driver", "vfs"))
}

func TestContainerFlowsOverlay2(t *testing.T) {
	t.Parallel()
	containerFlows(t, startDaemon(t))
}

func TestContainerFlowsBtrfs(t *testing.T) {
	t.Parallel()
	d, _ := startBtrfsDaemon(t)
	containerFlows(t, d)
}
