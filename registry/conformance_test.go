package registry

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth/registry/auth"
	"berth/registry/storage/fs"
)

// TestOCIConformance runs the official OCI distribution-spec conformance
// suite (the standalone binary built from opencontainers/distribution-spec
// conformance/ on its main branch) against the registry in every auth mode,
// as an admin and as a user in their own namespace. The suite is not part of
// this repository: `scripts/deps.sh test` builds it from the Go module proxy.
func TestOCIConformance(t *testing.T) {
	bin := conformanceBin()
	if bin == "" {
		t.Skip("OCI conformance suite not built (scripts/deps.sh test builds it; or point OCI_CONFORMANCE_BIN at one)")
	}
	for _, tc := range []struct{ mode, user string }{{"none", ""}, {"basic", "root"}, {"basic", "alice"}, {"token", "root"}, {"token", "alice"}} {
		t.Run(tc.mode+"-"+tc.user, func(t *testing.T) {
			url := conformanceRegistry(t, tc.mode)
			ns := tc.user
			if ns == "" {
				ns = "conformance"
			}
			results := t.TempDir()
			cmd := exec.CommandContext(t.Context(), bin)
			cmd.Dir = results
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+strings.TrimPrefix(url, "http://"), "OCI_TLS=disabled",
				"OCI_USERNAME="+tc.user, "OCI_PASSWORD="+tc.user+"-pw",
				"OCI_REPO1="+ns+"/repo1", "OCI_REPO2="+ns+"/repo2", "OCI_RESULTS_DIR="+results,
				"OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
				"OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true")
			out, err := cmd.CombinedOutput()
			junit, rerr := os.ReadFile(filepath.Join(results, "junit.xml"))
			if err != nil || rerr != nil {
				t.Fatalf("conformance: %v %v\n%s", err, rerr, out)
			}
			m := regexp.MustCompile(`tests="(\d+)".*?failures="(\d+)"`).FindSubmatch(junit)
			if m == nil || string(m[2]) != "0" {
				t.Fatalf("conformance failures:\n%s", out)
			}
			t.Logf("%s tests, 0 failures", m[1])
		})
	}
}

func conformanceRegistry(t *testing.T, mode string) string {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := auth.NewAccounts(d)
	if err := acc.Add(t.Context(), "root", "root-pw", true, false); err != nil {
		t.Fatal(err)
	}
	if err := acc.Add(t.Context(), "alice", "alice-pw", false, false); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Auth.Mode = mode
	h, err := NewHandler(context.Background(), cfg, d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// conformanceBin is $OCI_CONFORMANCE_BIN, else the suite scripts/deps.sh
// builds into $HOME/go/bin, else "".
func conformanceBin() string {
	if bin := os.Getenv("OCI_CONFORMANCE_BIN"); bin != "" {
		return bin
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	bin := filepath.Join(home, "go", "bin", "oci-conformance.test")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	return bin
}
