package upstream

import (
	"errors"
	"maps"
	"testing"

	"berth/errdefs"
)

func TestParseChallenge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`, "bearer",
			map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}},
		{`Basic realm="berth-registry"`, "basic", map[string]string{"realm": "berth-registry"}},
		{`bearer realm=https://a/t, service=s`, "bearer", map[string]string{"realm": "https://a/t", "service": "s"}},
		{`Bearer realm="unterminated`, "bearer", map[string]string{"realm": "unterminated"}},
		{``, "", map[string]string{}},
	} {
		scheme, params := parseChallenge(tc.in)
		if scheme != tc.scheme || !maps.Equal(params, tc.params) {
			t.Errorf("parseChallenge(%q) = %q %v, want %q %v", tc.in, scheme, params, tc.scheme, tc.params)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "registry.example", "ftp://r.example", "http://"} {
		if _, err := New(Config{URL: u}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%q) = %v, want InvalidArgument", u, err)
		}
	}
}
