package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type goPackage struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// TestDependencyRules enforces the package rules of docs/ARCHITECTURE.md.
func TestDependencyRules(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if !under(imp, "berth") {
				continue
			}
			switch {
			case (under(imp, "berth/daemon") || under(imp, "berth/cli")) && p.ImportPath != "berth":
				t.Errorf("%s imports %s: only main may import daemon and cli", p.ImportPath, imp)
			case under(imp, "berth/api") && p.ImportPath != "berth/daemon" && !under(p.ImportPath, "berth/api"):
				t.Errorf("%s imports %s: only daemon wires the API", p.ImportPath, imp)
			case under(p.ImportPath, "berth/registry") && !under(imp, "berth/registry") && imp != "berth/errdefs" && imp != "berth/version":
				t.Errorf("%s imports %s: the registry shares nothing with the engine but errdefs", p.ImportPath, imp)
			case p.ImportPath == "berth/detachkeys":
				t.Errorf("%s imports %s: the CLI's leaves stay standard library only", p.ImportPath, imp)
			case under(p.ImportPath, "berth/cli") && !under(imp, "berth/cli") && imp != "berth/version" && imp != "berth/detachkeys" && !under(imp, "berth/remote/credentials"):
				t.Errorf("%s imports %s: the CLI speaks only the Engine API", p.ImportPath, imp)
			}
		}
	}
}
