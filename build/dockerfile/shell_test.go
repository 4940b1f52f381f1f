package dockerfile

import (
	"slices"
	"strings"
	"testing"
)

func vars(kv ...string) Lookup {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestLexWord(t *testing.T) {
	t.Parallel()
	env := vars("A", "a", "EMPTY", "", "SP", "x y", "HOME", "/root")
	tests := []struct {
		in, want string
		escape   rune
	}{
		{in: "plain", want: "plain"},
		{in: "$A", want: "a"},
		{in: "${A}b", want: "ab"},
		{in: "$Ab", want: ""}, // the name is Ab
		{in: "$UNSET-x", want: "-x"},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${EMPTY-def}", want: ""},
		{in: "${UNSET-def}", want: "def"},
		{in: "${A:-def}", want: "a"},
		{in: "${A:+alt}", want: "alt"},
		{in: "${EMPTY:+alt}", want: ""},
		{in: "${EMPTY+alt}", want: "alt"},
		{in: "${UNSET+alt}", want: ""},
		{in: "${UNSET:-$A}", want: "a"},
		{in: "${UNSET:-${UNSET2:-deep}}", want: "deep"},
		{in: `${UNSET:-"quoted }"}`, want: "quoted }"},
		{in: `'$A'`, want: "$A"},
		{in: `"$A"`, want: "a"},
		{in: `"a b"`, want: "a b"},
		{in: `a\ b`, want: "a b"},
		{in: `\$A`, want: "$A"},
		{in: `"\$A"`, want: "$A"},
		{in: `"\a"`, want: `\a`},
		{in: `"\""`, want: `"`},
		{in: `'it''s'`, want: "its"},
		{in: "$", want: "$"},
		{in: "a$", want: "a$"},
		{in: "$1", want: ""},
		{in: "${SP}", want: "x y"},
		{in: "$HOME/bin", want: "/root/bin"},
		{in: "`$A", want: "$A", escape: '`'},
		{in: `C:\dir`, want: `C:\dir`, escape: '`'},
	}
	for _, tt := range tests {
		got, err := Lex{Escape: tt.escape}.Word(tt.in, env)
		if err != nil || got != tt.want {
			t.Errorf("Word(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestLexWords(t *testing.T) {
	t.Parallel()
	env := vars("PORTS", "80 443/udp", "Q", "a b")
	tests := []struct {
		in   string
		want []string
	}{
		{"80 443", []string{"80", "443"}},
		{"$PORTS 8080", []string{"80", "443/udp", "8080"}},
		{`"$Q" c`, []string{"a b", "c"}},
		{`'' x`, []string{"", "x"}},
		{`a\ b c`, []string{"a b", "c"}},
		{"  ", nil},
	}
	for _, tt := range tests {
		got, err := Lex{}.Words(tt.in, env)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Words(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestLexExpandKeepsQuotes(t *testing.T) {
	t.Parallel()
	got, err := Lex{}.Expand(`echo "$A" '$A' \$A ${A}`, vars("A", "x"))
	if want := `echo "x" '$A' \$A x`; err != nil || got != want {
		t.Fatalf("Expand = %q, %v; want %q", got, err, want)
	}
}

func TestLexErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`"open`, "matching double-quote"},
		{`'open`, "matching single-quote"},
		{"${A", "matching }"},
		{"${A:-x", "matching }"},
		{"${}", "bad substitution"},
		{"${A/x/y}", "unsupported modifier (/)"},
		{"${REQ:?must be set}", "REQ: must be set"},
		{"${REQ?}", "REQ: is not allowed to be unset"},
	}
	for _, tt := range tests {
		_, err := Lex{}.Word(tt.in, vars())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Word(%q) error %v, want %q", tt.in, err, tt.want)
		}
	}
}
