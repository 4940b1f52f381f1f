package volume

import (
	"fmt"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/mount"
)

// summary is one mount point in a line, for compact expectations.
func summary(mps []MountPoint) string {
	var out []string
	for _, m := range mps {
		out = append(out, fmt.Sprintf("%s %s name=%s src=%s rw=%v mode=%s copy=%v", m.Destination, m.Type, m.Name, m.Source, m.RW, m.Mode, m.CopyData))
	}
	return strings.Join(out, "\n")
}

func TestPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	other := []MountPoint{
		{Type: mount.TypeVolume, Name: "shared", Source: "/vols/shared/_data", Destination: "/shared", RW: true, CopyData: true, Spec: mount.Mount{Type: mount.TypeVolume, Source: "shared"}},
		{Type: mount.TypeBind, Source: "/etc", Destination: "/cfg", RW: true, Propagation: mount.PropagationRPrivate},
	}
	from := func(ref string) ([]MountPoint, error) {
		if ref == "donor" {
			return other, nil
		}
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "No such container: %s", ref)
	}
	tests := []struct {
		name string
		req  Request
		want string
		err  string
	}{
		{name: "everything",
			req: Request{
				Binds:   []string{"named:/named", dir + ":/host:ro"},
				Mounts:  []mount.Mount{{Type: mount.TypeTmpfs, Target: "/scratch"}, {Type: mount.TypeVolume, Source: "m", Target: "/m", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
				Volumes: map[string]struct{}{"/anon": {}, "/named": {}, "/tmp/": {}, "/cfg": {}},
				Tmpfs:   map[string]string{"/tmp": ""}, VolumesFrom: []string{"donor:ro"}, From: from},
			want: "/anon volume name= src= rw=true mode= copy=true\n" +
				"/cfg bind name= src=/etc rw=false mode= copy=false\n" +
				"/host bind name= src=" + dir + " rw=false mode=ro copy=false\n" +
				"/m volume name=m src= rw=true mode=z copy=false\n" +
				"/named volume name=named src= rw=true mode=z copy=true\n" +
				"/scratch tmpfs name= src= rw=true mode= copy=false\n" +
				"/shared volume name=shared src=/vols/shared/_data rw=false mode= copy=false"},
		{name: "binds override volumes-from", req: Request{Binds: []string{"mine:/shared"}, VolumesFrom: []string{"donor"}, From: from},
			want: "/cfg bind name= src=/etc rw=true mode= copy=false\n/shared volume name=mine src= rw=true mode=z copy=true"},
		{name: "duplicate binds", req: Request{Binds: []string{"a1:/x", "b1:/x/"}}, err: "Duplicate mount point: /x"},
		{name: "bind and mount", req: Request{Binds: []string{"a1:/x"}, Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/x"}}}, err: "Duplicate mount point: /x"},
		{name: "bind and tmpfs", req: Request{Binds: []string{"a1:/x"}, Tmpfs: map[string]string{"/x/": "size=1m"}}, err: "Duplicate mount point: /x"},
		{name: "missing donor", req: Request{VolumesFrom: []string{"ghost"}, From: from}, err: "No such container: ghost"},
		{name: "bad volumes-from mode", req: Request{VolumesFrom: []string{"donor:shared"}, From: from}, err: "invalid mode: shared"},
		{name: "relative config volume", req: Request{Volumes: map[string]struct{}{"data": {}}},
			err: `invalid mount config for type "volume": invalid mount path: 'data' mount path must be absolute`},
		{name: "mount of missing bind source", req: Request{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/x", Target: "/x"}}},
			err: `invalid mount config for type "bind": bind source path does not exist: /x`},
	}
	for _, tc := range tests {
		got, err := Plan(tc.req)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || summary(got) != tc.want {
			t.Errorf("%s: %v\ngot:\n%s\nwant:\n%s", tc.name, err, summary(got), tc.want)
		}
	}
}

func TestCheckNesting(t *testing.T) {
	t.Parallel()
	bind := func(src, dst string) MountPoint {
		return MountPoint{Type: mount.TypeBind, Source: src, Destination: dst}
	}
	tests := []struct {
		name string
		mps  []MountPoint
		bad  bool
	}{
		{name: "independent", mps: []MountPoint{bind("/srv/a", "/a"), bind("/srv/b", "/b")}},
		{name: "inner source below outer's", mps: []MountPoint{bind("/srv/app", "/app"), bind("/srv/app/node_modules", "/app/node_modules")}},
		{name: "same source nested", mps: []MountPoint{bind("/srv/d", "/data"), bind("/srv/d", "/data/again")}, bad: true},
		{name: "inner source holds outer's", mps: []MountPoint{bind("/srv/d", "/data"), bind("/srv", "/data/up")}, bad: true},
		{name: "same volume nested", mps: []MountPoint{
			{Type: mount.TypeVolume, Name: "v", Source: "/vols/v/_data", Destination: "/v"},
			{Type: mount.TypeVolume, Name: "v", Source: "/vols/v/_data", Destination: "/v/w"}}, bad: true},
		{name: "tmpfs inside", mps: []MountPoint{bind("/srv/d", "/data"), {Type: mount.TypeTmpfs, Destination: "/data/t"}}},
		{name: "sibling prefix", mps: []MountPoint{bind("/srv/d", "/data"), bind("/srv/d", "/database")}},
	}
	for _, tc := range tests {
		err := checkNesting(tc.mps)
		if (err != nil) != tc.bad || (err != nil && !strings.Contains(err.Error(), "which would loop")) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
