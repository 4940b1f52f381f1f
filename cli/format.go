package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
)

// shortID is docker's 12-hex display form of an image or layer id.
func shortID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// humanSize is the SIZE column: three significant digits, SI units, no
// space ("2.05MB", "392MB", "0B").
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// humanSize4 is the four-digit variant docker uses for totals ("394.2MB").
func humanSize4(n int64) string {
	return units.HumanSize(float64(n))
}

// since renders a Unix time as docker's relative age ("12 minutes ago",
// "About an hour ago", "Less than a second ago").
func since(now time.Time, unix int64) string {
	return units.HumanDuration(now.Sub(time.Unix(unix, 0))) + " ago"
}

// ellipsis cuts s to max runes, the last being "…", as docker truncates
// long cells.
func ellipsis(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// templateFuncs are the functions docker offers in --format templates.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(true)
			if err := enc.Encode(v); err != nil {
				return "", err
			}
			return strings.TrimSpace(buf.String()), nil
		},
		"split":    strings.Split,
		"join":     strings.Join,
		"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
		"lower":    strings.ToLower,
		"upper":    strings.ToUpper,
		"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
		"truncate": func(s string, n int) string { return string([]rune(s)[:min(n, utf8.RuneCountInString(s))]) },
		"println":  fmt.Sprintln,
	}
}

// parseTemplate parses a user --format template; "\t" and "\n" typed as
// two characters become the real ones, as in docker.
func parseTemplate(format string) (*template.Template, error) {
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("").Funcs(templateFuncs()).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// listFormat is a resolved --format value for a list command.
type listFormat struct {
	table    bool
	template string
}

// resolveFormat turns --format into a template: "" and "table" mean the
// command's default table, "json" one JSON object per line, "table X" a
// table of X, anything else a bare template per row.
func resolveFormat(format, defaultTable string) listFormat {
	switch {
	case format == "" || format == "table":
		return listFormat{table: true, template: strings.TrimPrefix(defaultTable, "table ")}
	case format == "json":
		return listFormat{template: "{{json .}}"}
	case strings.HasPrefix(format, "table "):
		return listFormat{table: true, template: strings.TrimSpace(format[len("table "):])}
	}
	return listFormat{template: format}
}

// writeList renders rows with f. Tables get a header row, made by running
// the same template over the column titles, and are aligned like docker's
// (tabwriter: min width 10, padding 3).
func writeList[T any](w io.Writer, f listFormat, headers map[string]string, rows []T) error {
	t, err := parseTemplate(f.template)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, row := range rows {
		if err := t.Execute(&buf, row); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		buf.WriteByte('\n')
	}
	if !f.table {
		_, err := w.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	var head bytes.Buffer
	if err := t.Execute(&head, headers); err == nil && strings.TrimSpace(head.String()) != "" {
		head.WriteByte('\n')
		if _, err := tw.Write(head.Bytes()); err != nil {
			return err
		}
	}
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}
