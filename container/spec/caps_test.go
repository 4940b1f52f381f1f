package spec

import (
	"errors"
	"slices"
	"testing"

	"berth/errdefs"
)

func TestCapabilities(t *testing.T) {
	t.Parallel()
	all := allCapabilities(40, nil)
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		wantErr    string
	}{
		{name: "defaults", want: defaultCapabilities},
		{name: "add lower without prefix", add: []string{"sys_admin"}, want: append(slices.Clone(defaultCapabilities), "CAP_SYS_ADMIN")},
		{name: "add existing is no-op", add: []string{"CAP_CHOWN"}, want: defaultCapabilities},
		{name: "drop mixed case", drop: []string{"Net_Raw", "cap_mknod"}, want: without(defaultCapabilities, "CAP_NET_RAW", "CAP_MKNOD")},
		{name: "drop all keeps adds", drop: []string{"ALL"}, add: []string{"chown", "kill"}, want: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "drop all", drop: []string{"all"}, want: []string{}},
		{name: "add all minus drops", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: without(all, "CAP_SYS_ADMIN")},
		{name: "privileged wins", privileged: true, drop: []string{"ALL"}, want: all},
		{name: "unknown add", add: []string{"FOO"}, wantErr: `cap-add: unknown capability: "CAP_FOO"`},
		{name: "unknown drop", drop: []string{"CAP_NOPE"}, wantErr: `cap-drop: unknown capability: "CAP_NOPE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Capabilities(tt.add, tt.drop, tt.privileged, 40, nil)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAllCapabilitiesBounded(t *testing.T) {
	t.Parallel()
	if got := allCapabilities(37, nil); len(got) != 38 || got[37] != "CAP_AUDIT_READ" {
		t.Fatalf("lastCap 37: %q", got)
	}
	host := without(knownCapabilities, "CAP_SYS_RESOURCE")
	got, err := Capabilities(nil, nil, true, 0, host)
	if err != nil || slices.Contains(got, "CAP_SYS_RESOURCE") || len(got) != len(knownCapabilities)-1 {
		t.Fatalf("privileged beyond host bounding set: %q, %v", got, err)
	}
	if m := capsFromMask(0xa80425fb); !slices.Equal(sorted(m), sorted(defaultCapabilities)) {
		t.Fatalf("Docker's CapEff a80425fb = %q, want the default set", m)
	}
}

func without(list []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
