package cli

import (
	"errors"
	"slices"
	"strings"

	"github.com/moby/moby/client"
)

// filterOpt collects repeated --filter name=value flags.
type filterOpt map[string][]string

func (f filterOpt) String() string {
	var parts []string
	for k, vs := range f {
		for _, v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// Set takes one "name=value" pair, as docker does.
func (f filterOpt) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("bad format of filter (expected name=value)")
	}
	f.add(strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value))
	return nil
}

func (f filterOpt) Type() string { return "filter" }

func (f filterOpt) add(name, value string) {
	f[name] = append(f[name], value)
}

// Filters converts to the client's wire form.
func (f filterOpt) Filters() client.Filters {
	out := client.Filters{}
	for k, vs := range f {
		out.Add(k, vs...)
	}
	return out
}
