package ignore

import (
	"strings"
	"testing"
)

func TestExcluded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns string
		excluded []string
		included []string
	}{
		{"plain", "secret.txt\n", []string{"secret.txt"}, []string{"a/secret.txt", "secret.txt.bak"}},
		{"leading slash", "/secret.txt\n", []string{"secret.txt"}, []string{"a/secret.txt"}},
		{"dir excludes contents", "node_modules\n", []string{"node_modules", "node_modules/x/y.js"}, []string{"src/node_modules"}},
		{"star", "*.log\n", []string{"a.log"}, []string{"dir/a.log", "log"}},
		{"star in dir", "*/temp*\n", []string{"a/temp", "a/tempfile", "a/temp/x"}, []string{"temp", "a/b/temp"}},
		{"double star", "**/*.go\n", []string{"a.go", "x/a.go", "x/y/z/a.go"}, []string{"a.golang"}},
		{"double star middle", "a/**/b\n", []string{"a/b", "a/x/b", "a/x/y/b", "a/x/b/c"}, []string{"b", "x/a/b"}},
		{"trailing double star", "a/**\n", []string{"a/b", "a/b/c"}, []string{"ab"}},
		{"question", "file?.txt\n", []string{"file1.txt"}, []string{"file10.txt", "file/.txt"}},
		{"class", "file[0-9].txt\n", []string{"file3.txt"}, []string{"filea.txt"}},
		{"escape", `a\*b` + "\n", []string{"a*b"}, []string{"axb"}},
		{"exception", "*.md\n!README.md\n", []string{"CHANGES.md"}, []string{"README.md"}},
		{"exception order", "!README.md\n*.md\n", []string{"README.md"}, nil},
		{"exception in excluded dir", "docs\n!docs/keep.txt\n", []string{"docs/other.txt"}, []string{"docs/keep.txt"}},
		{"everything but", "*\n!src\n", []string{"Makefile", "other/x"}, []string{"src", "src/main.go"}},
		{"comments and blanks", "# comment\n\n   \n  spaced.txt  \n", []string{"spaced.txt"}, []string{"# comment"}},
		{"clean", "./a/../b/./c\n", []string{"b/c"}, []string{"a/b/c"}},
		{"dockerfile", "Dockerfile\n.dockerignore\n", []string{"Dockerfile", ".dockerignore"}, []string{"sub/Dockerfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Read(strings.NewReader(tt.patterns))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.excluded {
				if !m.Excluded(p) {
					t.Errorf("%q is not excluded", p)
				}
			}
			for _, p := range tt.included {
				if m.Excluded(p) {
					t.Errorf("%q is excluded", p)
				}
			}
		})
	}
}

func TestSkipDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns string
		dir      string
		skip     bool
	}{
		{"node_modules\n", "node_modules", true},
		{"node_modules\n", "src", false},
		{"docs\n!docs/keep.txt\n", "docs", false},
		{"docs\n!docs/keep.txt\n", "docs/sub", true},
		{"*\n!src/main.go\n", "src", false},
		{"*\n!src/main.go\n", "vendor", true},
		{"*\n!**/*.go\n", "vendor", false},
		{"a\n!a/b/c\n", "a/b", false},
	}
	for _, tt := range tests {
		m, err := Read(strings.NewReader(tt.patterns))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.SkipDir(tt.dir); got != tt.skip {
			t.Errorf("%q: SkipDir(%q) = %v, want %v", tt.patterns, tt.dir, got, tt.skip)
		}
	}
}

func TestBadPattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"!", "[", "a[b"} {
		if _, err := New([]string{p}); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
	var m *Matcher
	if !m.Empty() || m.Excluded("x") {
		t.Error("a nil matcher excludes")
	}
}
