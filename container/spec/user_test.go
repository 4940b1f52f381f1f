package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"berth/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
# a comment
broken line
`

const testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:root,app
audio:x:29:app
www-data:x:33:
app:x:1000:
staff:x:50:
`

func writeEtc(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if group != "" {
		if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte(group), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	root := writeEtc(t, testPasswd, testGroup)
	tests := []struct {
		spec     string
		groupAdd []string
		want     User
		wantErr  string
	}{
		{spec: "", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}, Home: "/root"}},
		{spec: "root", want: User{AdditionalGids: []uint32{0, 10}, Home: "/root"}},
		{spec: "app", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}, Home: "/home/app"}},
		{spec: "1000", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}, Home: "/home/app"}},
		{spec: "app:staff", want: User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}, Home: "/home/app"}},
		{spec: "app:50", want: User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}, Home: "/home/app"}},
		{spec: "www-data", want: User{UID: 33, GID: 33, AdditionalGids: []uint32{33}, Home: "/var/www"}},
		{spec: "4242", want: User{UID: 4242, AdditionalGids: []uint32{0}}},
		{spec: "4242:4343", want: User{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}}},
		{spec: "1000:1000", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000}, Home: "/home/app"}},
		{spec: "daemon", groupAdd: []string{"audio", "777", "wheel"}, want: User{UID: 1, GID: 1, AdditionalGids: []uint32{1, 29, 777, 10}, Home: "/usr/sbin"}},
		{spec: "xyz", wantErr: "unable to find user xyz: no matching entries in passwd file: invalid argument"},
		{spec: "app:nogroup", wantErr: "unable to find group nogroup: no matching entries in group file: invalid argument"},
		{spec: "root", groupAdd: []string{"nope"}, wantErr: "unable to find group nope: no matching entries in group file: invalid argument"},
		{spec: "-5", wantErr: "user -5: uids and gids must be in range 0-2147483646: invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveUser(root, tt.spec, tt.groupAdd)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUserWithoutEtc(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	got, err := ResolveUser(root, "", nil)
	if err != nil || !reflect.DeepEqual(got, User{AdditionalGids: []uint32{0}}) {
		t.Fatalf("root without passwd: %+v, %v", got, err)
	}
	got, err = ResolveUser(root, "123:456", []string{"789"})
	if err != nil || !reflect.DeepEqual(got, User{UID: 123, GID: 456, AdditionalGids: []uint32{456, 789}}) {
		t.Fatalf("numeric without passwd: %+v, %v", got, err)
	}
	if _, err := ResolveUser(root, "nobody", nil); err == nil {
		t.Fatal("name without passwd resolved")
	}
}

// An absolute symlink in the image must resolve inside the rootfs, never
// to the host's /etc/passwd.
func TestResolveUserSymlinkStaysInRootfs(t *testing.T) {
	t.Parallel()
	root := writeEtc(t, "", testGroup)
	if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "lib/passwd"), []byte("only:x:77:77::/only:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveUser(root, "only", nil)
	if err != nil || got.UID != 77 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ResolveUser(root, "root", nil); err == nil {
		t.Fatal("host passwd was read through the symlink")
	}
}
