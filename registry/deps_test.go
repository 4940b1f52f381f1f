package registry

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAWSSDKConfined: the AWS SDK is registry/storage/s3's business alone,
// so the rest of berth (engine and registry) never grows a dependency on it.
func TestAWSSDKConfined(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "berth/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		checked++
		for _, imp := range strings.Fields(imports) {
			if (strings.HasPrefix(imp, "github.com/aws/") || strings.HasPrefix(imp, "github.com/aws/smithy-go")) && pkg != "berth/registry/storage/s3" {
				t.Errorf("%s imports %s: only berth/registry/storage/s3 may use the AWS SDK", pkg, imp)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list found only %d packages", checked)
	}
}
