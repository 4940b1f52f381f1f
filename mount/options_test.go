package mount

import (
	"slices"
	"testing"
)

func TestLowerdirRoundTrip(t *testing.T) {
	t.Parallel()
	for _, dirs := range [][]string{
		{"/a"},
		{"/a/b", "/c"},
		{"/with:colon", `/back\slash`, "/plain"},
	} {
		got := SplitLowerdir(JoinLowerdir(dirs))
		if !slices.Equal(got, dirs) {
			t.Errorf("SplitLowerdir(JoinLowerdir(%q)) = %q", dirs, got)
		}
	}
}

func TestReadMounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mounts     []Mount
		overlay    bool
		upper      string
		lowers     []string
		bind       bool
		readOnly   bool
		writable   string
		writableOK bool
	}{
		{
			name: "overlay with upper",
			mounts: []Mount{{Type: "overlay", Source: "overlay",
				Options: []string{"index=off", "lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w"}}},
			overlay: true, upper: "/u", lowers: []string{"/l1", "/l2"},
			writable: "/u", writableOK: true,
		},
		{
			name: "read-only overlay",
			mounts: []Mount{{Type: "overlay", Source: "overlay",
				Options: []string{"lowerdir=/l1:/l2"}}},
			overlay: true, lowers: []string{"/l1", "/l2"}, readOnly: true,
		},
		{
			name:     "rw bind",
			mounts:   []Mount{{Type: "bind", Source: "/fs", Options: []string{"rbind", "rw"}}},
			bind:     true,
			writable: "/fs", writableOK: true,
		},
		{
			name:     "ro bind",
			mounts:   []Mount{{Type: "bind", Source: "/fs", Options: []string{"rbind", "ro"}}},
			bind:     true,
			readOnly: true,
		},
		{
			name:   "two mounts are neither",
			mounts: []Mount{{Type: "bind", Source: "/a"}, {Type: "bind", Source: "/b"}},
		},
		{
			name:   "tmpfs",
			mounts: []Mount{{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, ok := OverlayOf(tt.mounts)
			if ok != tt.overlay || o.Upper != tt.upper || !slices.Equal(o.Lower, tt.lowers) {
				t.Errorf("OverlayOf = %+v, %v", o, ok)
			}
			dir, ro, ok := BindOf(tt.mounts)
			if ok != tt.bind || (ok && (dir != tt.mounts[0].Source || ro != tt.readOnly)) {
				t.Errorf("BindOf = %q, %v, %v", dir, ro, ok)
			}
			if len(tt.mounts) == 1 && tt.mounts[0].ReadOnly() != tt.readOnly {
				t.Errorf("ReadOnly = %v", !tt.readOnly)
			}
			w, ok := WritableDir(tt.mounts)
			if w != tt.writable || ok != tt.writableOK {
				t.Errorf("WritableDir = %q, %v", w, ok)
			}
		})
	}
}
