package cli

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlyTheAPIClient keeps the CLI usable against any Docker
// Engine API server: besides the client and its wire types it may import
// only berth/version, a leaf of build-time strings,
// berth/remote/credentials, the docker config.json and credential helpers,
// and berth/detachkeys, the detach-key syntax (both standard library only).
func TestImportsOnlyTheAPIClient(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"berth/version": true, "berth/remote/credentials": true, "berth/detachkeys": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "berth/") && !allowed[path] {
				t.Errorf("%s imports %s", f, path)
			}
			if strings.HasPrefix(path, "github.com/moby/moby/") && !strings.HasPrefix(path, "github.com/moby/moby/client") &&
				!strings.HasPrefix(path, "github.com/moby/moby/api/types") {
				t.Errorf("%s imports %s, beyond the client and wire types", f, path)
			}
		}
	}
}
