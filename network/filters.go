package network

import (
	"math"
	"strconv"
	"strings"
	"time"

	"berth/errdefs"
)

// listFilter compiles `network ls` filters: driver, id, label, name,
// scope, type (custom|builtin) and dangling.
func listFilter(filters map[string][]string) (func(n *networkRecord, inUse bool) bool, error) {
	for key, vals := range filters {
		switch key {
		case "driver", "id", "label", "name", "scope":
		case "type":
			for _, v := range vals {
				if v != "custom" && v != "builtin" {
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter: 'type'='%s'", v)
				}
			}
		case "dangling":
			for _, v := range vals {
				if _, err := strconv.ParseBool(v); err != nil {
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'dangling=%s'", v)
				}
			}
		default:
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
		}
	}
	return func(n *networkRecord, inUse bool) bool {
		return anyOf(filters["driver"], func(v string) bool { return n.Driver == v }) &&
			anyOf(filters["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			anyOf(filters["name"], func(v string) bool { return strings.Contains(n.Name, v) }) &&
			anyOf(filters["scope"], func(v string) bool { return v == "local" }) &&
			anyOf(filters["type"], func(v string) bool { return (v == "builtin") == n.predefined() }) &&
			anyOf(filters["dangling"], func(v string) bool {
				d, _ := strconv.ParseBool(v)
				return d == (!inUse && !n.predefined())
			}) &&
			allOf(filters["label"], func(v string) bool { return hasLabel(n.Labels, v) })
	}, nil
}

// pruneFilter compiles `network prune` filters: until, label and label!.
func pruneFilter(filters map[string][]string, now time.Time) (func(n *networkRecord) bool, error) {
	var until time.Time
	for key, vals := range filters {
		switch key {
		case "label", "label!":
		case "until":
			if len(vals) != 1 {
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "more than one until filter specified")
			}
			t, err := parseTimestamp(vals[0], now)
			if err != nil {
				return nil, err
			}
			until = t
		default:
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
		}
	}
	return func(n *networkRecord) bool {
		if !until.IsZero() && !n.Created.Before(until) {
			return false
		}
		return allOf(filters["label"], func(v string) bool { return hasLabel(n.Labels, v) }) &&
			allOf(filters["label!"], func(v string) bool { return !hasLabel(n.Labels, v) })
	}, nil
}

func anyOf(vals []string, f func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if f(v) {
			return true
		}
	}
	return false
}

func allOf(vals []string, f func(string) bool) bool {
	for _, v := range vals {
		if !f(v) {
			return false
		}
	}
	return true
}

// hasLabel matches "key" (present) or "key=value".
func hasLabel(labels map[string]string, filter string) bool {
	k, v, withValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == v)
}

// parseTimestamp reads the until filter as Docker does: a Go duration
// before now, Unix seconds (with optional fraction), or an RFC 3339 time
// or date.
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "eE") {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "failed to parse value as time or duration: %q", v)
}
