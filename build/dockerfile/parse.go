// Package dockerfile reads Dockerfiles the way Docker does, in three layers:
//
//   - Parse (this file) turns the text into Nodes: parser directives
//     (`# syntax=`, `# escape=`, `# check=`) at the top, comments and
//     blank lines dropped, continuation lines joined, leading `--flags`
//     split off, and heredoc bodies (`<<EOF` ... `EOF`) attached to the
//     RUN, COPY and ADD that open them.
//   - Instructions (instructions.go) checks each Node and types it: a
//     Dockerfile becomes its global ARGs plus Stages of instructions.
//   - Lex (shell.go) does Docker's variable substitution and word
//     splitting, which the builder applies at build time, when ARG and ENV
//     values are known.
//
// Errors name the file and line: "Dockerfile:3: unknown instruction: FOO".
package dockerfile

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"

	"berth/errdefs"
)

// Error is a syntax error at a line of a Dockerfile.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("dockerfile parse error on line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap makes every syntax error an invalid argument.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// Directives are the parser directives at the top of a Dockerfile.
type Directives struct {
	Escape rune   // '\\' (default) or '`'
	Syntax string // the frontend image a BuildKit client would use
	Check  string // BuildKit's build-check settings, kept for completeness
}

// Heredoc is a here-document attached to a RUN, COPY or ADD.
type Heredoc struct {
	Name    string // the delimiter word
	Content string // the body, each line with its newline
	Expand  bool   // unquoted delimiter: variables in Content are expanded
	Chomp   bool   // <<-: leading tabs were stripped from every line
	FD      int    // the descriptor written before <<, 0 when none
}

// Node is one instruction as written.
type Node struct {
	Cmd      string   // the instruction word, lower case
	Flags    []string // the leading --name[=value] words, "--" stripped
	Args     string   // what follows the flags, unparsed
	Line     int      // first line, from 1
	EndLine  int      // last line, heredoc bodies included
	Original string   // the instruction with continuation lines joined
	Heredocs []Heredoc
	// Escape is the file's escape character ('\\' when zero).
	Escape rune
}

func (n *Node) escape() rune {
	if n.Escape == 0 {
		return '\\'
	}
	return n.Escape
}

// File is a parsed Dockerfile.
type File struct {
	Name       string
	Directives Directives
	Nodes      []*Node
	// Warnings are things Docker accepts but frowns upon, such as empty
	// continuation lines.
	Warnings []string
}

var (
	reDirective = regexp.MustCompile(`^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`)
	reHeredoc   = regexp.MustCompile(`^(\d*)<<(-?)(['"]?)([^\s'"<>]+)(['"]?)$`)
)

// knownDirectives are the directive names Docker understands; any other
// `# key=value` line is a comment and ends the directives.
var knownDirectives = map[string]bool{"syntax": true, "escape": true, "check": true}

// maxLine bounds one physical line; Dockerfiles are text, not data.
const maxLine = 1 << 20

// Parse reads a Dockerfile; name is used in errors.
func Parse(name string, r io.Reader) (*File, error) {
	p := &parser{f: &File{Name: name, Directives: Directives{Escape: '\\'}}, sc: bufio.NewScanner(r)}
	p.sc.Buffer(make([]byte, 64<<10), maxLine)
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.f, nil
}

type parser struct {
	f      *File
	sc     *bufio.Scanner
	lineNo int
	// pending is a line read ahead by the directive scan.
	pending    *string
	directives bool // still looking for directives
	seen       map[string]bool
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{File: p.f.Name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// next returns the next physical line without its line ending.
func (p *parser) next() (string, bool, error) {
	if p.pending != nil {
		l := *p.pending
		p.pending = nil
		return l, true, nil
	}
	if !p.sc.Scan() {
		if err := p.sc.Err(); err != nil {
			return "", false, fmt.Errorf("%s: read: %w", p.f.Name, err)
		}
		return "", false, nil
	}
	p.lineNo++
	line := strings.TrimSuffix(p.sc.Text(), "\r")
	if p.lineNo == 1 {
		line = strings.TrimPrefix(line, "\ufeff")
	}
	return line, true, nil
}

func (p *parser) run() error {
	p.directives = true
	p.seen = map[string]bool{}
	for {
		line, ok, err := p.next()
		if err != nil || !ok {
			return err
		}
		if p.directives {
			done, err := p.directive(line)
			if err != nil {
				return err
			}
			if !done {
				continue
			}
		}
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if err := p.instruction(line); err != nil {
			return err
		}
	}
}

// directive handles a line while directives may still come. It returns
// true when the line is not a directive and must be parsed as usual.
func (p *parser) directive(line string) (bool, error) {
	m := reDirective.FindStringSubmatch(line)
	if m == nil {
		p.directives = false
		return true, nil
	}
	key := strings.ToLower(m[1])
	if !knownDirectives[key] {
		p.directives = false
		return false, nil // a comment
	}
	if p.seen[key] {
		return false, p.errorf(p.lineNo, "only one %s parser directive can be used", key)
	}
	p.seen[key] = true
	switch key {
	case "escape":
		if m[2] != "\\" && m[2] != "`" {
			return false, p.errorf(p.lineNo, "invalid escape token '%s' does not match ^[\\\\`]$", m[2])
		}
		p.f.Directives.Escape = rune(m[2][0])
	case "syntax":
		p.f.Directives.Syntax = m[2]
	case "check":
		p.f.Directives.Check = m[2]
	}
	return false, nil
}

// continues reports whether a line ends with the escape character (then
// followed only by blanks) and returns it without them.
func (p *parser) continues(line string) (string, bool) {
	t := strings.TrimRight(line, " \t")
	if strings.HasSuffix(t, string(p.f.Directives.Escape)) {
		return t[:len(t)-1], true
	}
	return line, false
}

// instruction reads one logical instruction starting at first.
func (p *parser) instruction(first string) error {
	start := p.lineNo
	logical, more := p.continues(first)
	emptyContinuation := false
	for more {
		line, ok, err := p.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
		if trimmed == "" {
			emptyContinuation = true
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		var part string
		part, more = p.continues(line)
		logical += part
	}
	if emptyContinuation {
		p.f.Warnings = append(p.f.Warnings, fmt.Sprintf("%s:%d: empty continuation line", p.f.Name, start))
	}
	logical = strings.TrimSpace(logical)
	word, rest, _ := strings.Cut(logical, " ")
	if i := strings.IndexAny(word, "\t"); i >= 0 {
		word, rest = logical[:i], logical[i+1:]
	}
	n := &Node{Cmd: strings.ToLower(word), Line: start, Original: logical, Escape: p.f.Directives.Escape}
	flags, args, err := splitFlags(strings.TrimLeftFunc(rest, unicode.IsSpace))
	if err != nil {
		return p.errorf(start, "%s", err.Error())
	}
	n.Flags, n.Args = flags, args
	if n.Cmd == "run" || n.Cmd == "copy" || n.Cmd == "add" {
		if err := p.heredocs(n); err != nil {
			return err
		}
	}
	n.EndLine = p.lineNo
	p.f.Nodes = append(p.f.Nodes, n)
	return nil
}

// splitFlags takes the leading --flag words off an instruction's
// arguments. A flag's value may be quoted; "--" alone ends the flags.
func splitFlags(s string) ([]string, string, error) {
	var flags []string
	for strings.HasPrefix(s, "--") {
		var word strings.Builder
		var quote byte
		i := 2
		for ; i < len(s); i++ {
			c := s[i]
			if quote != 0 {
				if c == quote {
					quote = 0
				} else {
					word.WriteByte(c)
				}
				continue
			}
			if c == '"' || c == '\'' {
				quote = c
				continue
			}
			if c == ' ' || c == '\t' {
				break
			}
			word.WriteByte(c)
		}
		if quote != 0 {
			return nil, "", fmt.Errorf("unterminated quote in flag %s", s[:i])
		}
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
		if word.Len() == 0 {
			break // "--" ends the flags
		}
		flags = append(flags, word.String())
	}
	return flags, s, nil
}

// heredocs reads the bodies of the here-documents a RUN, COPY or ADD
// opens, in the order they are named. Exec-form (JSON) arguments have none.
func (p *parser) heredocs(n *Node) error {
	if strings.HasPrefix(n.Args, "[") && isJSONArray(n.Args) {
		return nil
	}
	for _, w := range shellWords(n.Args) {
		m := reHeredoc.FindStringSubmatch(w)
		if m == nil || m[3] != m[5] {
			continue
		}
		h := Heredoc{Name: m[4], Expand: m[3] == "", Chomp: m[2] == "-"}
		if m[1] != "" {
			fmt.Sscan(m[1], &h.FD)
		}
		var body strings.Builder
		closed := false
		for {
			line, ok, err := p.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if h.Chomp {
				line = strings.TrimLeft(line, "\t")
			}
			if line == h.Name {
				closed = true
				break
			}
			body.WriteString(line + "\n")
		}
		if !closed {
			return p.errorf(n.Line, "unterminated heredoc %s: no line %q before the end of the file", h.Name, h.Name)
		}
		h.Content = body.String()
		n.Heredocs = append(n.Heredocs, h)
	}
	return nil
}

// shellWords splits s on blanks outside quotes, keeping the quotes: enough
// to find heredoc markers without interpreting the command.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			quote = c
			cur.WriteRune(c)
		case c == ' ' || c == '\t':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}
