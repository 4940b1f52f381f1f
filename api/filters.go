package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"berth/errdefs"
)

// parseFilters decodes the "filters" query parameter. Docker clients send
// either {"key":["v1","v2"]} or the older {"key":{"v1":true,"v2":true}};
// both come out as a map of sorted value lists. An empty parameter is no
// filter at all.
func parseFilters(raw string) (map[string][]string, error) {
	if raw == "" {
		return map[string][]string{}, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(raw), &lists); err == nil {
		for k, v := range lists {
			slices.Sort(v)
			lists[k] = v
		}
		return lists, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &sets); err != nil {
		return nil, fmt.Errorf("filters %q: %w", raw, errdefs.ErrInvalidArgument)
	}
	out := make(map[string][]string, len(sets))
	for k, set := range sets {
		vals := []string{}
		for v, on := range set {
			if on {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		out[k] = vals
	}
	return out, nil
}

// boolValue reads a query flag the way dockerd does: anything but "", "0",
// "no", "false" and "none" is true.
func boolValue(q url.Values, key string) bool {
	switch strings.ToLower(strings.TrimSpace(q.Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}
