package spec

import (
	"errors"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

func TestParseUlimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    container.Ulimit
		wantErr bool
	}{
		{in: "nofile=1024", want: container.Ulimit{Name: "nofile", Soft: 1024, Hard: 1024}},
		{in: "nofile=1024:2048", want: container.Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}},
		{in: "nproc=-1", want: container.Ulimit{Name: "nproc", Soft: -1, Hard: -1}},
		{in: "nofile=2048:1024", wantErr: true},
		{in: "bogus=1", wantErr: true},
		{in: "nofile", wantErr: true},
		{in: "nofile=x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUlimit(tt.in)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseDeviceCgroupRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		typ, access  string
		major, minor int64 // -1 for a wildcard
		wantErr      bool
	}{
		{in: "c 1:3 rwm", typ: "c", access: "rwm", major: 1, minor: 3},
		{in: "b 8:* r", typ: "b", access: "r", major: 8, minor: -1},
		{in: "a *:* m", typ: "a", access: "m", major: -1, minor: -1},
		{in: "c 1:3", wantErr: true},
		{in: "x 1:3 rwm", wantErr: true},
		{in: "c 1-3 rwm", wantErr: true},
		{in: "c 1:3 rwx", wantErr: true},
		{in: "c a:3 r", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDeviceCgroupRule(tt.in)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || got.Type != tt.typ || got.Access != tt.access || !got.Allow ||
				num(got.Major) != tt.major || num(got.Minor) != tt.minor {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func num(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
