package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ignorePatterns is a .dockerignore, matched with Docker's rules: the last
// matching pattern decides, `!` re-includes, a pattern matching a
// directory matches everything below it, `**` spans directories. The CLI
// cannot import the daemon's matcher (it speaks only the Engine API), so
// it has its own; a test checks that both agree.
type ignorePatterns struct {
	patterns []ignorePattern
}

type ignorePattern struct {
	text      string
	exception bool
	re        *regexp.Regexp
}

func readIgnore(r io.Reader) (*ignorePatterns, error) {
	m := &ignorePatterns{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if strings.HasPrefix(line, "!") {
			p.exception = true
			if line = strings.TrimSpace(line[1:]); line == "" {
				return nil, errors.New(`.dockerignore: illegal exclusion pattern: "!"`)
			}
		}
		line = path.Clean(line)
		if len(line) > 1 && line[0] == '/' {
			line = strings.TrimLeft(line, "/")
		}
		re, err := ignoreRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: pattern %q: %w", line, err)
		}
		p.text, p.re = line, re
		m.patterns = append(m.patterns, p)
	}
	return m, sc.Err()
}

func ignoreRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
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
		case c == '\\' && i+1 < len(rs):
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		case c == '\\':
			b.WriteString(`\\`)
		case c == '[' || c == ']':
			b.WriteRune(c)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// excluded reports whether rel, or a directory above it, is excluded.
func (m *ignorePatterns) excluded(rel string) bool {
	if m == nil {
		return false
	}
	var parents []string
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		parents = append(parents, dir)
	}
	out := false
	for _, p := range m.patterns {
		match := p.re.MatchString(rel)
		for i := 0; !match && i < len(parents); i++ {
			match = p.re.MatchString(parents[i])
		}
		if match {
			out = !p.exception
		}
	}
	return out
}

// skipDir reports whether nothing below an excluded directory can be
// included again by an exception.
func (m *ignorePatterns) skipDir(rel string) bool {
	if !m.excluded(rel) {
		return false
	}
	for _, p := range m.patterns {
		if !p.exception {
			continue
		}
		prefix := p.text
		if i := strings.IndexAny(prefix, `*?[\`); i >= 0 {
			prefix = prefix[:max(strings.LastIndex(prefix[:i], "/"), 0)]
		}
		if prefix == "" || strings.HasPrefix(prefix+"/", rel+"/") || strings.HasPrefix(rel+"/", prefix+"/") {
			return false
		}
	}
	return true
}

// contextTar streams dir as a build context: files .dockerignore excludes
// are left out, except the Dockerfile and .dockerignore themselves, which
// the daemon needs; owners are root, as the docker CLI sends them. extra,
// when set, is a Dockerfile from elsewhere added under its own name.
func contextTar(w io.Writer, dir, dockerfile string, extra *contextFile) error {
	var ign *ignorePatterns
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		ign, err = readIgnore(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	keep := map[string]bool{".dockerignore": true, filepath.ToSlash(dockerfile): true}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("can't stat '%s'", p)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if !keep[rel] && ign.excluded(rel) {
			if d.IsDir() && ign.skipDir(rel) {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
		}
		return addContextEntry(tw, p, rel, d)
	})
	if err == nil && extra != nil {
		err = tw.WriteHeader(&tar.Header{Name: extra.name, Mode: 0o600, Size: int64(len(extra.data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		if err == nil {
			_, err = tw.Write(extra.data)
		}
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// contextFile is a file added to the context that is not in its
// directory: a Dockerfile from stdin or from outside the context.
type contextFile struct {
	name string
	data []byte
}

func randomDockerfileName() string {
	b := make([]byte, 8)
	rand.Read(b)
	return ".dockerfile." + hex.EncodeToString(b)
}

func addContextEntry(tw *tar.Writer, p, rel string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return fmt.Errorf("can't stat '%s'", p)
	}
	if fi.Mode()&(fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice) != 0 {
		return nil
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.Format = rel, 0, 0, "", "", tar.FormatPAX
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	if fi.IsDir() {
		h.Name += "/"
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("can't open '%s': %w", p, err)
	}
	defer f.Close()
	_, err = io.Copy(tw, io.LimitReader(f, h.Size))
	return err
}

// isTarStream reports whether a stream (after decompression, which the
// daemon does itself) starts like a tar; used for `build -`.
func isTarStream(head []byte) bool {
	if len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	for _, magic := range [][]byte{{0x1f, 0x8b}, {0x28, 0xb5, 0x2f, 0xfd}, {0xfd, '7', 'z', 'X', 'Z'}, []byte("BZh")} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return false
}

// dockerfileTar is the context of `build -` given a bare Dockerfile.
func dockerfileTar(name string, data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}
