// Package ignore reads .dockerignore files and matches context paths
// against them with Docker's rules:
//
//   - one pattern a line; blank lines and lines starting with # are skipped;
//     patterns are cleaned (filepath.Clean) and a leading / is dropped, so
//     every pattern is relative to the context root;
//   - `*` matches any run of characters but /, `?` one character but /,
//     `[...]` a class, `\` escapes; `**` matches any number of
//     directories, none included;
//   - a pattern that matches a directory matches everything below it;
//   - a pattern starting with ! is an exception: it includes again what
//     earlier patterns excluded. The last pattern that matches wins.
package ignore

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"berth/errdefs"
)

// Matcher holds the patterns of one .dockerignore.
type Matcher struct {
	patterns []pattern
}

type pattern struct {
	text      string // cleaned, without the !
	exception bool
	re        *regexp.Regexp
}

// Read parses a .dockerignore.
func Read(r io.Reader) (*Matcher, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	return New(lines)
}

// New compiles patterns given one a line, as in a .dockerignore.
func New(lines []string) (*Matcher, error) {
	m := &Matcher{}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := pattern{}
		if strings.HasPrefix(line, "!") {
			p.exception = true
			line = strings.TrimSpace(line[1:])
			if line == "" {
				return nil, fmt.Errorf(".dockerignore: illegal exclusion pattern: \"!\": %w", errdefs.ErrInvalidArgument)
			}
		}
		line = path.Clean(line)
		if len(line) > 1 && line[0] == '/' {
			line = strings.TrimLeft(line, "/")
		}
		p.text = line
		re, err := compile(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: pattern %q: %w: %w", line, err, errdefs.ErrInvalidArgument)
		}
		p.re = re
		m.patterns = append(m.patterns, p)
	}
	return m, nil
}

// compile turns a pattern into an anchored regular expression.
func compile(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '*' && i+1 < len(rs) && rs[i+1] == '*':
			i++
			if i+1 < len(rs) && rs[i+1] == '/' {
				i++
			}
			if i+1 >= len(rs) {
				b.WriteString(".*")
			} else {
				b.WriteString("(.*/)?")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '\\':
			if i+1 < len(rs) {
				i++
				b.WriteString(regexp.QuoteMeta(string(rs[i])))
			} else {
				b.WriteString(`\\`)
			}
		case c == '[' || c == ']':
			b.WriteRune(c)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Empty reports whether there are no patterns.
func (m *Matcher) Empty() bool { return m == nil || len(m.patterns) == 0 }

// Excluded reports whether rel (slash-separated, relative to the context
// root) is left out of the context: by a pattern matching it or one of
// its parent directories, unless a later exception matches.
func (m *Matcher) Excluded(rel string) bool {
	if m.Empty() {
		return false
	}
	rel = path.Clean(strings.TrimPrefix(rel, "/"))
	var parents []string
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		parents = append(parents, dir)
	}
	excluded := false
	for _, p := range m.patterns {
		match := p.re.MatchString(rel)
		for i := 0; !match && i < len(parents); i++ {
			match = p.re.MatchString(parents[i])
		}
		if match {
			excluded = !p.exception
		}
	}
	return excluded
}

// SkipDir reports whether a walk may skip the directory rel altogether:
// it is excluded and no exception could bring back anything below it.
func (m *Matcher) SkipDir(rel string) bool {
	if !m.Excluded(rel) {
		return false
	}
	rel = path.Clean(strings.TrimPrefix(rel, "/"))
	for _, p := range m.patterns {
		if !p.exception {
			continue
		}
		prefix := literalPrefix(p.text)
		if prefix == "" || strings.HasPrefix(prefix+"/", rel+"/") || strings.HasPrefix(rel+"/", prefix+"/") {
			return false
		}
	}
	return true
}

// literalPrefix is the part of a pattern before its first wildcard, cut
// back to a whole directory.
func literalPrefix(p string) string {
	i := strings.IndexAny(p, `*?[\`)
	if i < 0 {
		return p
	}
	j := strings.LastIndex(p[:i], "/")
	if j < 0 {
		return ""
	}
	return p[:j]
}
