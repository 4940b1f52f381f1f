package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"berth/errdefs"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// saveFixtures loads two images that share a base layer: app (three tags
// in two repositories) and an untagged one.
func saveFixtures(t *testing.T, s *Service) (app, other fxImage) {
	t.Helper()
	app = twoLayerImage(t, "app", "app:v1", "app:latest", "example.com/team/app:v2")
	other = newFxImage(t, "other", nil, app.layers[0], layerTar(t, fxReg("other", "file\n")))
	if _, err := loadBytes(t, s, tarOf(t, legacyEntries(t, app, other))); err != nil {
		t.Fatal(err)
	}
	return app, other
}

func saveBytes(t *testing.T, s *Service, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.SaveImages(context.Background(), names, &buf); err != nil {
		t.Fatalf("save %q: %v", names, err)
	}
	return buf.Bytes()
}

func TestSaveArchiveGolden(t *testing.T) {
	s := newService(t, drivers[0])
	_, other := saveFixtures(t, s)
	arc := saveBytes(t, s, "app", "example.com/team/app:v2", other.id().Encoded()[:12])
	got := archiveListing(t, arc)
	golden := filepath.Join("testdata", "save_listing.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("archive listing differs from %s (run with -update to accept):\n%s", golden, got)
	}
	if again := saveBytes(t, s, "app", "example.com/team/app:v2", other.id().Encoded()[:12]); !bytes.Equal(arc, again) {
		t.Fatal("saving the same images twice gave different bytes")
	}
}

// archiveListing prints an archive's entries sorted by name, with every
// digest replaced by what it names (config-1, layer-1.2, manifest-1), and
// the contents of the metadata files and manifests.
func archiveListing(t *testing.T, arc []byte) string {
	t.Helper()
	files := map[string][]byte{}
	var lines []string
	tr := tar.NewReader(bytes.NewReader(arc))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[hdr.Name] = body
		kind := "file"
		if hdr.Typeflag == tar.TypeDir {
			kind = "dir"
		}
		lines = append(lines, fmt.Sprintf("%s %s %04o uid=%d gid=%d %s", hdr.Name, kind, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime.UTC().Format("2006-01-02T15:04:05Z")))
	}
	names := map[string]string{}
	var items []manifestItem
	if err := json.Unmarshal(files["manifest.json"], &items); err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		names[filepath.Base(it.Config)] = fmt.Sprintf("<config-%d>", i+1)
		for j, l := range it.Layers {
			if _, ok := names[filepath.Base(l)]; !ok {
				names[filepath.Base(l)] = fmt.Sprintf("<layer-%d.%d>", i+1, j+1)
			}
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range idx.Manifests {
		if _, ok := names[d.Digest.Encoded()]; !ok {
			n++
			names[d.Digest.Encoded()] = fmt.Sprintf("<manifest-%d>", n)
			lines = append(lines, "  manifest "+string(files["blobs/sha256/"+d.Digest.Encoded()]))
		}
	}
	for _, f := range []string{"index.json", "manifest.json", "oci-layout", "repositories"} {
		// A trailing newline shows as a literal \n.
		lines = append(lines, "  "+f+" "+strings.ReplaceAll(string(files[f]), "\n", `\n`))
	}
	out := strings.Join(lines, "\n") + "\n"
	for hex, name := range names {
		out = strings.ReplaceAll(out, hex, name)
	}
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sort.Strings(rows)
	return strings.Join(rows, "\n") + "\n"
}

// TestSaveLoadRoundTrip saves, removes everything, loads, and expects the
// same images with the same tags; then loads the archive compressed into
// a store that still has the images, which changes nothing.
func TestSaveLoadRoundTrip(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		bb := importBusybox(t, s, "busybox:latest")
		if err := s.TagImage(ctx, "busybox", "registry.example:5000/tools/bb:1.0"); err != nil {
			t.Fatal(err)
		}
		app, other := saveFixtures(t, s)
		before, err := s.Images(ctx, ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		arc := saveBytes(t, s, "busybox", "registry.example:5000/tools/bb:1.0", "app", "example.com/team/app", other.id().String())
		removeAll(t, s)
		got, err := loadBytes(t, s, arc)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs := []string{bb, app.id().String(), other.id().String()}
		if len(got) != 3 {
			t.Fatalf("loaded %+v", got)
		}
		for i, li := range got {
			if li.ID.String() != wantIDs[i] {
				t.Fatalf("image %d: %s, want %s", i, li.ID, wantIDs[i])
			}
		}
		after, err := s.Images(ctx, ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if summarize(before) != summarize(after) {
			t.Fatalf("images differ after the round trip:\n%s\n%s", summarize(before), summarize(after))
		}
		checkFixture(t, s, app.id(), "app")
		if sh, err := readImageFile(t, s, digest.Digest(bb), "bin/sh"); err != nil || len(sh) < 1<<20 {
			t.Fatalf("busybox /bin/sh: %d bytes, %v", len(sh), err)
		}
		if !bytes.Equal(arc, saveBytes(t, s, "busybox", "registry.example:5000/tools/bb:1.0", "app", "example.com/team/app", other.id().String())) {
			t.Fatal("the reloaded images save differently")
		}
	})
}

func summarize(list []imagetypes.Summary) string {
	var out []string
	for _, img := range list {
		tags := slices.Clone(img.RepoTags)
		sort.Strings(tags)
		out = append(out, fmt.Sprintf("%s %d %q", img.ID, img.Size, tags))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestSaveNames(t *testing.T) {
	s := newService(t, drivers[0])
	ctx := context.Background()
	app, other := saveFixtures(t, s)
	cases := []struct {
		names []string
		tags  [][]string // RepoTags per manifest.json entry
	}{
		{[]string{"app"}, [][]string{{"app:latest", "app:v1"}}},
		{[]string{"app:v1"}, [][]string{{"app:v1"}}},
		{[]string{"example.com/team/app"}, [][]string{{"example.com/team/app:v2"}}},
		{[]string{app.id().String()}, [][]string{nil}},
		{[]string{"app:v1", app.id().Encoded()[:8], "app:v1"}, [][]string{{"app:v1"}}},
		{[]string{other.id().Encoded(), "app:v1"}, [][]string{nil, {"app:v1"}}},
	}
	for _, tc := range cases {
		var items []manifestItem
		arc := saveBytes(t, s, tc.names...)
		if err := json.Unmarshal(readEntry(t, arc, "manifest.json"), &items); err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, it := range items {
			got = append(got, it.RepoTags)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.tags) {
			t.Errorf("save %q: RepoTags %q, want %q", tc.names, got, tc.tags)
		}
	}
	for _, bad := range [][]string{{"nope"}, {"app:v1", "nope:1"}, {"Bad Name"}, {}} {
		var buf bytes.Buffer
		err := s.SaveImages(ctx, bad, &buf)
		if err == nil || buf.Len() != 0 {
			t.Errorf("save %q: %v, %d bytes written", bad, err, buf.Len())
		}
	}
	var buf bytes.Buffer
	if err := s.SaveImages(ctx, []string{"nope"}, &buf); !errdefs.NotFound(err) || err.Error() != "No such image: nope:latest" {
		t.Errorf("unknown image: %v", err)
	}
}

// TestSaveLoadKeepsParent checks manifest.json carries a parent link when
// both images are saved, and load restores it.
func TestSaveLoadKeepsParent(t *testing.T) {
	s := newService(t, drivers[0])
	ctx := context.Background()
	app, other := saveFixtures(t, s)
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getJSON[record](tx.Bucket(bucketImages), other.id().String(), "image")
		if err != nil {
			return err
		}
		r.Parent = app.id()
		return putJSON(tx.Bucket(bucketImages), other.id().String(), r)
	})
	if err != nil {
		t.Fatal(err)
	}
	arc := saveBytes(t, s, other.id().String(), "app:v1")
	var items []manifestItem
	if err := json.Unmarshal(readEntry(t, arc, "manifest.json"), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Parent != app.id() || items[1].Parent != "" {
		t.Fatalf("manifest.json: %+v", items)
	}
	if only := saveBytes(t, s, other.id().String()); strings.Contains(string(readEntry(t, only, "manifest.json")), "Parent") {
		t.Fatal("a parent outside the archive was named")
	}
	removeAll(t, s)
	if _, err := loadBytes(t, s, arc); err != nil {
		t.Fatal(err)
	}
	st, err := s.view()
	if err != nil || st.images[other.id()].Parent != app.id() {
		t.Fatalf("parent after load: %+v %v", st.images[other.id()], err)
	}
	if _, err := s.ImageDelete(ctx, "app:v1", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func readEntry(t *testing.T, arc []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(arc))
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in archive: %v", name, err)
		}
		if hdr.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

// TestSaveRefusesCorruptStore checks that a blob changed on disk ends the
// archive with an error instead of shipping the wrong bytes.
func TestSaveRefusesCorruptStore(t *testing.T) {
	s := newService(t, drivers[0])
	app, _ := saveFixtures(t, s)
	p := filepath.Join(contentRoot(s), "blobs", "sha256", app.diffIDs()[1].Encoded())
	os.Chmod(p, 0o644)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
	err = s.SaveImages(context.Background(), []string{"app:v1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("save of a corrupt blob: %v", err)
	}
}

// TestSkopeoReadsSavedArchive checks the archive with another
// implementation: skopeo inspects it as a docker-archive and copies it to
// an OCI layout, and both of skopeo's outputs load back with the same
// layers and files.
func TestSkopeoReadsSavedArchive(t *testing.T) {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed (scripts/deps.sh installs it)")
	}
	s := newService(t, drivers[0])
	app, _ := saveFixtures(t, s)
	dir := t.TempDir()
	arcPath := filepath.Join(dir, "app.tar")
	if err := os.WriteFile(arcPath, saveBytes(t, s, "app:v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "inspect", "docker-archive:"+arcPath).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var ins struct {
		Digest       string
		Layers       []string
		Os           string
		Architecture string
		Labels       map[string]string
	}
	if err := json.Unmarshal(out, &ins); err != nil {
		t.Fatalf("skopeo inspect output: %v\n%s", err, out)
	}
	if len(ins.Layers) != 2 || ins.Layers[1] != app.diffIDs()[1].String() || ins.Os != "linux" || ins.Labels["fixture"] != "app" {
		t.Fatalf("skopeo inspect: %s", out)
	}
	ociDir := filepath.Join(dir, "oci")
	dockerArc := filepath.Join(dir, "skopeo.tar")
	for _, args := range [][]string{
		{"copy", "docker-archive:" + arcPath, "oci:" + ociDir + ":copied:v9"},
		{"copy", "oci:" + ociDir + ":copied:v9", "docker-archive:" + dockerArc + ":skopeo/app:v8"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("skopeo %q: %v\n%s", args, err, out)
		}
	}
	removeAll(t, s)
	for _, tc := range []struct {
		data []byte
		tag  string
	}{{tarDir(t, ociDir), "copied:v9"}, {mustRead(t, dockerArc), "skopeo/app:v8"}} {
		// skopeo rewrites the config when it converts to OCI, so the ID
		// changes; the layers must not.
		got, err := loadBytes(t, s, tc.data)
		if err != nil || len(got) != 1 || !slices.Equal(got[0].Tags, []string{tc.tag}) {
			t.Fatalf("load skopeo's %s: %+v %v", tc.tag, got, err)
		}
		ins, err := s.ImageInspect(context.Background(), tc.tag)
		if err != nil || fmt.Sprint(ins.RootFS.Layers) != fmt.Sprint(app.diffIDs()) || ins.Config.Labels["fixture"] != "app" {
			t.Fatalf("inspect skopeo's %s: %+v %v", tc.tag, ins.RootFS, err)
		}
		checkFixture(t, s, got[0].ID, "app")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarDir packs a directory tree, as a user would tar an OCI layout.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}
