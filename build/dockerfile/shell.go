package dockerfile

import (
	"fmt"
	"strings"
	"unicode"
)

// Lookup finds a variable's value; ok is false for an unset variable.
type Lookup func(name string) (value string, ok bool)

// Lex does Docker's variable substitution on an instruction's words:
// $VAR and ${VAR}; ${VAR:-default} and ${VAR-default}; ${VAR:+alt} and
// ${VAR+alt}; ${VAR:?message} and ${VAR?message}. Single quotes keep
// everything literal; double quotes allow substitution; the escape
// character keeps the next character literal (within double quotes only
// before `"`, `$` and itself).
type Lex struct {
	Escape rune // '\\' when zero
}

// Word substitutes variables in s and removes quotes and escapes, keeping
// blanks: one value (ENV, LABEL, WORKDIR, USER, a COPY source).
func (l Lex) Word(s string, vars Lookup) (string, error) {
	x := l.lexer(s, vars, false, false)
	if err := x.run(0); err != nil {
		return "", err
	}
	return x.cur.String(), nil
}

// Words is Word that also splits on blanks outside quotes, including
// blanks that unquoted variable values bring in (EXPOSE $PORTS).
func (l Lex) Words(s string, vars Lookup) ([]string, error) {
	x := l.lexer(s, vars, true, false)
	if err := x.run(0); err != nil {
		return nil, err
	}
	x.endWord()
	return x.words, nil
}

// Expand substitutes variables but keeps quotes and escapes as written:
// the body of a heredoc whose delimiter is unquoted.
func (l Lex) Expand(s string, vars Lookup) (string, error) {
	x := l.lexer(s, vars, false, true)
	if err := x.run(0); err != nil {
		return "", err
	}
	return x.cur.String(), nil
}

func (l Lex) lexer(s string, vars Lookup, split, raw bool) *lexer {
	esc := l.Escape
	if esc == 0 {
		esc = '\\'
	}
	if vars == nil {
		vars = func(string) (string, bool) { return "", false }
	}
	return &lexer{src: []rune(s), esc: esc, vars: vars, split: split, raw: raw}
}

const eof = rune(-1)

type lexer struct {
	src   []rune
	pos   int
	esc   rune
	vars  Lookup
	split bool // collect words
	raw   bool // keep quotes and escapes

	cur    strings.Builder
	inWord bool
	words  []string
}

func (x *lexer) peek() rune {
	if x.pos >= len(x.src) {
		return eof
	}
	return x.src[x.pos]
}

func (x *lexer) next() rune {
	c := x.peek()
	if c != eof {
		x.pos++
	}
	return c
}

// lit adds a character that never splits words (quoted or escaped).
func (x *lexer) lit(c rune) {
	x.cur.WriteRune(c)
	x.inWord = true
}

// plain adds an unquoted character: blanks end the word when splitting.
func (x *lexer) plain(c rune) {
	if x.split && unicode.IsSpace(c) {
		x.endWord()
		return
	}
	x.lit(c)
}

func (x *lexer) endWord() {
	if x.inWord {
		x.words = append(x.words, x.cur.String())
		x.cur.Reset()
		x.inWord = false
	}
}

// run processes until stop (0: the end of the input), consuming stop.
func (x *lexer) run(stop rune) error {
	for {
		c := x.peek()
		switch {
		case c == eof:
			if stop != 0 {
				return fmt.Errorf("unexpected end of statement while looking for matching %s", string(stop))
			}
			return nil
		case stop != 0 && c == stop:
			x.next()
			return nil
		case c == '\'':
			if err := x.singleQuote(); err != nil {
				return err
			}
		case c == '"':
			if err := x.doubleQuote(); err != nil {
				return err
			}
		case c == '$':
			v, err := x.dollar()
			if err != nil {
				return err
			}
			for _, r := range v {
				x.plain(r)
			}
		default:
			x.next()
			if c == x.esc {
				if x.raw {
					x.lit(c)
				}
				c = x.next()
				if c == eof {
					return nil
				}
				x.lit(c)
				continue
			}
			x.plain(c)
		}
	}
}

func (x *lexer) singleQuote() error {
	x.next()
	if x.raw {
		x.lit('\'')
	}
	x.inWord = true
	for {
		c := x.next()
		switch c {
		case eof:
			return fmt.Errorf("unexpected end of statement while looking for matching single-quote")
		case '\'':
			if x.raw {
				x.lit('\'')
			}
			return nil
		}
		x.lit(c)
	}
}

func (x *lexer) doubleQuote() error {
	x.next()
	if x.raw {
		x.lit('"')
	}
	x.inWord = true
	for {
		c := x.peek()
		switch c {
		case eof:
			return fmt.Errorf("unexpected end of statement while looking for matching double-quote")
		case '"':
			x.next()
			if x.raw {
				x.lit('"')
			}
			return nil
		case '$':
			v, err := x.dollar()
			if err != nil {
				return err
			}
			x.cur.WriteString(v)
			continue
		}
		x.next()
		if c == x.esc {
			switch x.peek() {
			case '"', '$', x.esc:
				if x.raw {
					x.lit(c)
				}
				c = x.next()
			}
		}
		x.lit(c)
	}
}

// dollar expands the variable reference at $.
func (x *lexer) dollar() (string, error) {
	x.next()
	if x.peek() != '{' {
		name := x.name()
		if name == "" {
			return "$", nil
		}
		v, _ := x.vars(name)
		return v, nil
	}
	x.next()
	name := x.name()
	if name == "" {
		return "", fmt.Errorf("bad substitution: missing variable name in ${...}")
	}
	value, set := x.vars(name)
	c := x.next()
	if c == '}' {
		return value, nil
	}
	colon := c == ':'
	if colon {
		c = x.next()
	}
	if c != '-' && c != '+' && c != '?' {
		if c == eof {
			return "", fmt.Errorf("unexpected end of statement while looking for matching }")
		}
		return "", fmt.Errorf("unsupported modifier (%s) in substitution of %s", string(c), name)
	}
	word, err := x.sub()
	if err != nil {
		return "", err
	}
	present := set && (!colon || value != "")
	switch c {
	case '-':
		if !present {
			return word, nil
		}
		return value, nil
	case '+':
		if present {
			return word, nil
		}
		return "", nil
	default: // '?'
		if present {
			return value, nil
		}
		if word == "" {
			word = "is not allowed to be unset"
		}
		return "", fmt.Errorf("%s: %s", name, word)
	}
}

// sub reads the word of a ${VAR:-word} up to its brace, with its own
// quotes and variables, as a separate value.
func (x *lexer) sub() (string, error) {
	inner := &lexer{src: x.src, pos: x.pos, esc: x.esc, vars: x.vars, raw: x.raw}
	if err := inner.run('}'); err != nil {
		return "", err
	}
	x.pos = inner.pos
	return inner.cur.String(), nil
}

// name reads a variable name: letters, digits and underscores, or a run
// of digits for a positional parameter (always unset here).
func (x *lexer) name() string {
	start := x.pos
	if c := x.peek(); c != eof && unicode.IsDigit(c) {
		for c := x.peek(); c != eof && unicode.IsDigit(c); c = x.peek() {
			x.next()
		}
		return string(x.src[start:x.pos])
	}
	for c := x.peek(); c != eof && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_'); c = x.peek() {
		x.next()
	}
	return string(x.src[start:x.pos])
}
