package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/system"
)

func TestStatusOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("image x: %w", errdefs.ErrNotFound), http.StatusNotFound},
		{errdefs.Errorf(errdefs.ErrNotFound, "No such image: x"), http.StatusNotFound},
		{fmt.Errorf("ref: %w", errdefs.ErrInvalidArgument), http.StatusBadRequest},
		{fmt.Errorf("name: %w", errdefs.ErrConflict), http.StatusConflict},
		{fmt.Errorf("tag: %w", errdefs.ErrAlreadyExists), http.StatusConflict},
		{fmt.Errorf("state: %w", errdefs.ErrFailedPrecondition), http.StatusConflict},
		{fmt.Errorf("login: %w", errdefs.ErrUnauthenticated), http.StatusUnauthorized},
		{fmt.Errorf("push: %w", errdefs.ErrPermissionDenied), http.StatusForbidden},
		{fmt.Errorf("registry: %w", errdefs.ErrUnavailable), http.StatusServiceUnavailable},
		{fmt.Errorf("pull: %w", errdefs.ErrNotImplemented), http.StatusNotImplemented},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestStreamErrorAfterHeader(t *testing.T) {
	t.Parallel()
	s := New(Options{}).(*server)
	s.handle(http.MethodPost, "/stream", func(w http.ResponseWriter, _ *http.Request, _ request) error {
		w.Header().Set("Content-Type", "application/json")
		if err := writeStream(w, streamMessage{}); err != nil {
			return err
		}
		return errors.New("disk full")
	})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/stream", nil))
	want := "{}\r\n" + `{"errorDetail":{"message":"disk full"},"error":"disk full"}` + "\r\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body, want)
	}
}

func TestParseFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    string
		wantErr bool
	}{
		{"", "map[]", false},
		{`{"label":["b","a"]}`, "map[label:[a b]]", false},
		{`{"dangling":{"true":true},"reference":{"x":true,"y":false}}`, "map[dangling:[true] reference:[x]]", false},
		{`[1,2]`, "", true},
	}
	for _, tt := range tests {
		got, err := parseFilters(tt.raw)
		if (err != nil) != tt.wantErr {
			t.Fatalf("parseFilters(%q) error = %v", tt.raw, err)
		}
		if err == nil && fmt.Sprint(got) != tt.want {
			t.Errorf("parseFilters(%q) = %v, want %s", tt.raw, got, tt.want)
		}
		if err != nil && !errdefs.InvalidArgument(err) {
			t.Errorf("parseFilters(%q) error kind: %v", tt.raw, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1.9", "1.24", -1}, {"1.24", "1.24", 0}, {"1.51", "1.24", 1}, {"2.0", "1.99", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%s, %s) = %d", tt.a, tt.b, got)
		}
	}
}

type failingSystem struct{ err error }

func (f failingSystem) Info(context.Context) (system.Info, error) { return system.Info{}, f.err }
func (f failingSystem) DiskUsage(context.Context) (system.DiskUsage, error) {
	return system.DiskUsage{}, f.err
}

func TestFailuresAreLogged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		level  string
	}{
		{errors.New("disk on fire"), 500, "level=ERROR"},
		{fmt.Errorf("info: %w", errdefs.ErrUnavailable), 503, "level=ERROR"},
		{fmt.Errorf("info: %w", errdefs.ErrNotFound), 404, "level=DEBUG"},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		h := New(Options{System: failingSystem{tt.err}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1.44/info", nil))
		if rec.Code != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, rec.Code, tt.status)
		}
		if !strings.Contains(logs.String(), tt.level+` msg="request failed" method=GET path=/v1.44/info status=`) {
			t.Errorf("%v: log lacks %s line:\n%s", tt.err, tt.level, logs.String())
		}
	}
}
