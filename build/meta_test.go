package build

import (
	"slices"
	"strings"
	"testing"

	"berth/errdefs"
)

func TestExposedPorts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "80", want: []string{"80/tcp"}},
		{in: "53/UDP", want: []string{"53/udp"}},
		{in: "8000-8002/tcp", want: []string{"8000/tcp", "8001/tcp", "8002/tcp"}},
		{in: "9/sctp", want: []string{"9/sctp"}},
		{in: "0", err: true},
		{in: "70000", err: true},
		{in: "80/icmp", err: true},
		{in: "90-80", err: true},
		{in: "http", err: true},
	}
	for _, tt := range tests {
		got, err := exposedPorts(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("exposedPorts(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errdefs.InvalidArgument(err) {
			t.Errorf("exposedPorts(%q): %v is not an invalid argument", tt.in, err)
		}
	}
}

func TestCheckSignal(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"SIGTERM", "TERM", "sigquit", "9", "SIGRTMIN+3", "64"} {
		if err := checkSignal(ok); err != nil {
			t.Errorf("checkSignal(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "65", ""} {
		if err := checkSignal(bad); err == nil || !strings.Contains(err.Error(), "Invalid signal") {
			t.Errorf("checkSignal(%q) = %v", bad, err)
		}
	}
}

func TestParseMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want mountSpec
		err  string
	}{
		{in: "type=cache,target=/root/.cache", want: mountSpec{Type: "cache", Target: "/root/.cache"}},
		{in: "type=cache,target=/c,id=go,sharing=locked,mode=0700,uid=1,gid=2,ro",
			want: mountSpec{Type: "cache", Target: "/c", ID: "go", Sharing: "locked", Mode: "0700", UID: "1", GID: "2", ReadOnly: true}},
		{in: "target=/src", want: mountSpec{Type: "bind", Target: "/src", ReadOnly: true}},
		{in: "type=bind,source=a,dst=/a,rw", want: mountSpec{Type: "bind", Source: "a", Target: "/a"}},
		{in: "type=bind,src=a,destination=/a,from=build,readwrite=true", want: mountSpec{Type: "bind", Source: "a", Target: "/a", From: "build"}},
		{in: "type=tmpfs,target=/t,size=1024", want: mountSpec{Type: "tmpfs", Target: "/t", Size: "1024"}},
		{in: `type=bind,"target=/with,comma"`, want: mountSpec{Type: "bind", Target: "/with,comma", ReadOnly: true}},
		{in: "type=cache", err: "a target is required"},
		{in: "type=nfs,target=/x", err: `unknown mount type "nfs"`},
		{in: "type=secret,id=x", err: "needs BuildKit's session"},
		{in: "type=cache,target=/c,sharing=sometimes", err: "sharing must be"},
		{in: "type=cache,target=/c,from=x", err: "cannot start from another stage"},
		{in: "type=bind,target=/x,colour=blue", err: `unknown key "colour"`},
	}
	for _, tt := range tests {
		got, err := parseMount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errdefs.InvalidArgument(err) {
				t.Errorf("parseMount(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMount(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestStepKeyCoversWhatAStepDependsOn(t *testing.T) {
	t.Parallel()
	base := stepKey{Parent: "sha256:aa", CreatedBy: "/bin/sh -c true", Config: map[string]string{"A": "1"}}
	variants := []stepKey{
		{Parent: "sha256:bb", CreatedBy: base.CreatedBy, Config: base.Config},
		{Parent: base.Parent, CreatedBy: "/bin/sh -c false", Config: base.Config},
		{Parent: base.Parent, CreatedBy: base.CreatedBy, Config: map[string]string{"A": "2"}},
		{Parent: base.Parent, CreatedBy: base.CreatedBy, Config: base.Config, Author: "me"},
		{Parent: base.Parent, CreatedBy: base.CreatedBy, Config: base.Config, Run: runKey{Env: []string{"X=1"}}},
		{Parent: base.Parent, CreatedBy: base.CreatedBy, Config: base.Config, Extra: "chown=1"},
	}
	k0, err := base.hash()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := base.hash()
	if again != k0 {
		t.Fatal("the same step hashes differently")
	}
	for i, v := range variants {
		if k, _ := v.hash(); k == k0 {
			t.Errorf("variant %d has the base's key", i)
		}
	}
}
