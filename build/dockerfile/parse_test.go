package dockerfile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// dump renders a parse as stable text: every node as the parser saw it,
// then the typed instruction it became.
func dump(d *Dockerfile) string {
	var b strings.Builder
	f := d.File
	fmt.Fprintf(&b, "directives: escape=%q syntax=%q check=%q\n", f.Directives.Escape, f.Directives.Syntax, f.Directives.Check)
	for _, w := range f.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, n := range f.Nodes {
		fmt.Fprintf(&b, "node %d-%d %s flags=%q args=%q\n", n.Line, n.EndLine, n.Cmd, n.Flags, n.Args)
		fmt.Fprintf(&b, "  original=%q\n", n.Original)
		for _, h := range n.Heredocs {
			fmt.Fprintf(&b, "  heredoc name=%q expand=%v chomp=%v fd=%d content=%q\n", h.Name, h.Expand, h.Chomp, h.FD, h.Content)
		}
	}
	for _, a := range d.MetaArgs {
		fmt.Fprintf(&b, "meta %s\n", describe(a))
	}
	for _, s := range d.Stages {
		fmt.Fprintf(&b, "stage %d name=%q image=%q platform=%q\n", s.Index, s.From.Name, s.From.Image, s.From.Platform)
		for _, in := range s.Steps {
			fmt.Fprintf(&b, "  %s\n", describe(in))
		}
	}
	return b.String()
}

func describe(in Instruction) string {
	p := in.Position()
	s := fmt.Sprintf("%+v", in)
	// Drop the position, already shown by the node dump.
	s = strings.Replace(s, fmt.Sprintf("Pos:{Keyword:%s Line:%d Original:%s} ", p.Keyword, p.Line, p.Original), "", 1)
	return fmt.Sprintf("%d %s %s", p.Line, p.Keyword, s)
}

func TestParseGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.Dockerfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, err := Read("Dockerfile", f)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(d)
			golden := strings.TrimSuffix(file, ".Dockerfile") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("parse of %s differs from %s:\n%s", file, golden, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown", "FROM busybox\nRUNN echo\n", 2, "unknown instruction: RUNN (did you mean RUN?)"},
		{"unknown far", "FROM busybox\nFROBNICATE x\n", 2, "unknown instruction: FROBNICATE"},
		{"before from", "RUN echo\n", 1, "RUN must come after a FROM"},
		{"from args", "FROM a b\n", 1, "FROM requires either one or three arguments"},
		{"from as", "FROM a XS b\n", 1, "FROM requires either one or three arguments"},
		{"stage name", "FROM a AS 1x\n", 1, "invalid name for build stage"},
		{"duplicate stage", "FROM a AS x\nFROM b AS X\n", 2, "duplicate name x"},
		{"copy one arg", "FROM a\nCOPY x\n", 2, "COPY requires at least two arguments"},
		{"env blank", "FROM a\nENV =x\n", 2, "ENV names can not be blank"},
		{"env one", "FROM a\nENV A\n", 2, "ENV must have two arguments"},
		{"env no equals", "FROM a\nENV A=1 B\n", 2, `can't find = in "B"`},
		{"unknown flag", "FROM a\nCOPY --frm=x a b\n", 2, "unknown flag: --frm"},
		{"flag no value", "FROM a\nCOPY --from a b\n", 2, "missing a value on flag: --from"},
		{"bad bool", "FROM a\nCOPY --link=maybe a b\n", 2, "expecting boolean value"},
		{"bad chmod", "FROM a\nCOPY --chmod=999 a b\n", 2, "invalid chmod parameter"},
		{"shell not json", "FROM a\nSHELL sh -c\n", 2, "SHELL requires the arguments to be in JSON form"},
		{"healthcheck type", "FROM a\nHEALTHCHECK BOGUS x\n", 2, `unknown type "BOGUS" in HEALTHCHECK`},
		{"healthcheck duration", "FROM a\nHEALTHCHECK --interval=soon CMD true\n", 2, `invalid duration "soon"`},
		{"healthcheck none args", "FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"},
		{"onbuild onbuild", "FROM a\nONBUILD ONBUILD RUN x\n", 2, "isn't allowed"},
		{"onbuild from", "FROM a\nONBUILD FROM x\n", 2, "FROM isn't allowed as an ONBUILD trigger"},
		{"onbuild unknown", "FROM a\nONBUILD FOO x\n", 2, "unknown instruction: FOO"},
		{"escape value", "# escape=x\nFROM a\n", 1, "invalid escape token 'x'"},
		{"two escapes", "# escape=`\n# escape=\\\nFROM a\n", 2, "only one escape parser directive"},
		{"heredoc open", "FROM a\nRUN <<EOF\necho\n", 2, "unterminated heredoc EOF"},
		{"empty", "# only a comment\n", 1, "file with no instructions"},
		{"volume empty", "FROM a\nVOLUME [\"\"]\n", 2, "VOLUME specified can not be an empty string"},
		{"run empty", "FROM a\nRUN\n", 2, "RUN requires at least one argument"},
		{"unterminated flag quote", "FROM a\nRUN --mount=\"type=bind echo\n", 2, "unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Read("Dockerfile.test", strings.NewReader(tt.src))
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("got %v, want a parse error", err)
			}
			if perr.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q (line %d), want line %d and %q", err, perr.Line, tt.line, tt.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("Dockerfile.test:%d: ", tt.line)) {
				t.Fatalf("error %q does not start with the file and line", err)
			}
			if !errdefs.InvalidArgument(err) {
				t.Fatalf("error %q is not an invalid argument", err)
			}
		})
	}
}

func TestDirectivesStopAtFirstOtherLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src    string
		escape rune
	}{
		{"# escape=`\nFROM a\n", '`'},
		{"\n# escape=`\nFROM a\n", '\\'},            // a blank line ends directives
		{"# comment\n# escape=`\nFROM a\n", '\\'},   // so does a comment
		{"# unknown=1\n# escape=`\nFROM a\n", '\\'}, // an unknown directive is a comment
		{"#ESCAPE = `\nFROM a\n", '`'},              // case and blanks do not matter
		{"FROM a\n# escape=`\nRUN x\n", '\\'},       // too late
		{"# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n", '`'},
	}
	for _, tt := range tests {
		f, err := Parse("Dockerfile", strings.NewReader(tt.src))
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if f.Directives.Escape != tt.escape {
			t.Errorf("%q: escape %q, want %q", tt.src, f.Directives.Escape, tt.escape)
		}
	}
}

func TestStageLookup(t *testing.T) {
	t.Parallel()
	d, err := Read("Dockerfile", strings.NewReader("FROM a AS Base\nFROM b\nFROM base AS final\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"base": 0, "BASE": 0, "1": 1, "final": 2, "2": 2} {
		s, ok := d.Stage(name)
		if !ok || s.Index != want {
			t.Errorf("Stage(%q) = %v, %v; want index %d", name, s, ok, want)
		}
	}
	for _, name := range []string{"3", "-1", "nope"} {
		if _, ok := d.Stage(name); ok {
			t.Errorf("Stage(%q) found a stage", name)
		}
	}
	if d.Steps() != 3 {
		t.Errorf("Steps() = %d", d.Steps())
	}
}
