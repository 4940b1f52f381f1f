package dockerfile

import (
	"encoding/json"
	"strings"
	"unicode"
)

// isJSONArray reports whether s is a JSON array of strings: the exec form
// of RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD and VOLUME.
func isJSONArray(s string) bool {
	_, ok := parseJSONArray(s)
	return ok
}

func parseJSONArray(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

// fields splits on blanks (spaces, tabs, the newlines of a heredoc-free
// argument list): the shell form of COPY, ADD, EXPOSE and VOLUME, whose
// words are expanded one by one at build time.
func fields(s string) []string {
	return strings.FieldsFunc(s, unicode.IsSpace)
}
