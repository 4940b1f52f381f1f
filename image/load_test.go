package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"
	"testing"

	"berth/archive"
	"berth/errdefs"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkFixture asserts that a loaded fixture image has its files, with the
// second layer's deletion and addition applied.
func checkFixture(t *testing.T, s *Service, id digest.Digest, label string) {
	t.Helper()
	if got, err := readImageFile(t, s, id, "etc/motd"); err != nil || got != "hello "+label+"\n" {
		t.Fatalf("etc/motd: %q %v", got, err)
	}
	if got, err := readImageFile(t, s, id, "bin/tool"); err != nil || !strings.Contains(got, label) {
		t.Fatalf("bin/tool: %q %v", got, err)
	}
	if _, err := readImageFile(t, s, id, "etc/gone"); err == nil {
		t.Fatal("etc/gone survived its whiteout")
	}
}

func loadBytes(t *testing.T, s *Service, b []byte) ([]LoadedImage, error) {
	t.Helper()
	return s.LoadImages(context.Background(), bytes.NewReader(b), LoadOptions{})
}

func TestLoadFormats(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		a := twoLayerImage(t, "a", "app:v1", "example.com/team/app:latest")
		b := twoLayerImage(t, "b") // untagged
		podman := func() []fxEntry {
			// podman: layers at the top as <diff id>.tar, linked from
			// the per-layer directories.
			var es []fxEntry
			for _, e := range legacyEntries(t, a) {
				if strings.HasSuffix(e.name, "/layer.tar") {
					top := digest.FromBytes(e.body).Encoded() + ".tar"
					es = append(es, fxEntry{name: top, body: e.body}, fxEntry{name: e.name, typ: tar.TypeSymlink, link: "../" + top})
					continue
				}
				es = append(es, e)
			}
			return es
		}
		cases := []struct {
			name    string
			entries []fxEntry
			want    []fxImage
		}{
			{"docker 25", docker25Entries(t, a, b), []fxImage{a, b}},
			{"docker 25, metadata first", reversed(docker25Entries(t, a, b)), []fxImage{a, b}},
			{"legacy", legacyEntries(t, a, b), []fxImage{a, b}},
			{"legacy, manifest first", reversed(legacyEntries(t, b, a)), []fxImage{b, a}},
			{"podman", podman(), []fxImage{a}},
			{"docker 25, re-packed with tar -C dir .", dotted(docker25Entries(t, a, b)), []fxImage{a, b}},
			{"podman, re-packed with tar -C dir .", dotted(podman()), []fxImage{a}},
			{"oci nested index", ociEntries(t, a, "app:v1"), []fxImage{{tags: []string{"app:v1"}, config: a.config, layers: a.layers}}},
			{"oci without media types", untyped(t, ociEntries(t, a, "app:v1")), []fxImage{{tags: []string{"app:v1"}, config: a.config, layers: a.layers}}},
		}
		for _, tc := range cases {
			got, err := loadBytes(t, s, tarOf(t, tc.entries))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s: loaded %+v", tc.name, got)
			}
			for i, w := range tc.want {
				if got[i].ID != w.id() || !slices.Equal(got[i].Tags, w.tags) {
					t.Fatalf("%s: image %d: got %s %q, want %s %q", tc.name, i, got[i].ID, got[i].Tags, w.id(), w.tags)
				}
			}
			checkFixture(t, s, a.id(), "a")
			ins, err := s.ImageInspect(ctx, "app:v1")
			if err != nil || ins.ID != a.id().String() || ins.Config.Labels["fixture"] != "a" {
				t.Fatalf("%s: inspect: %+v %v", tc.name, ins.InspectResponse, err)
			}
			removeAll(t, s)
		}
	})
}

// untyped drops the media type from index.json's descriptors, as some
// tools write it.
func untyped(t *testing.T, es []fxEntry) []fxEntry {
	out := slices.Clone(es)
	for i, e := range out {
		if e.name == "index.json" {
			var idx ocispec.Index
			if err := json.Unmarshal(e.body, &idx); err != nil {
				t.Fatal(err)
			}
			for j := range idx.Manifests {
				idx.Manifests[j].MediaType = ""
			}
			out[i].body = mustJSON(t, idx)
		}
	}
	return out
}

// dotted is the archive as `tar -C dir -cf x.tar .` writes it: a "./"
// directory entry first and every name under "./", directories included.
func dotted(es []fxEntry) []fxEntry {
	out := []fxEntry{{name: "./", typ: tar.TypeDir}}
	dirs := map[string]bool{}
	for _, e := range es {
		for d := path.Dir(e.name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			out = append(out, fxEntry{name: "./" + d + "/", typ: tar.TypeDir})
		}
		e.name = "./" + e.name
		out = append(out, e)
	}
	return out
}

func reversed(es []fxEntry) []fxEntry {
	out := slices.Clone(es)
	slices.Reverse(out)
	return out
}

// removeAll deletes every image and checks the stores are empty.
func removeAll(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	list, err := s.Images(ctx, ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		if _, err := s.ImageDelete(ctx, img.ID, DeleteOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	assertNoImages(t, s)
}

func TestLoadCompressed(t *testing.T) {
	s := newService(t, drivers[0])
	a := twoLayerImage(t, "a", "app:v1")
	plain := tarOf(t, docker25Entries(t, a))
	for _, c := range []archive.Compression{archive.Gzip, archive.Zstd, archive.Xz, archive.Bzip2} {
		t.Run(c.String(), func(t *testing.T) {
			packed := compressArchive(t, plain, c)
			if archive.DetectCompression(packed) != c {
				t.Fatalf("fixture is not %s", c)
			}
			got, err := loadBytes(t, s, packed)
			if err != nil || len(got) != 1 || got[0].ID != a.id() || got[0].Tags[0] != "app:v1" {
				t.Fatalf("load: %+v %v", got, err)
			}
			checkFixture(t, s, a.id(), "a")
			removeAll(t, s)
		})
	}
}

func compressArchive(t *testing.T, b []byte, c archive.Compression) []byte {
	t.Helper()
	if c == archive.Bzip2 {
		// Go has no bzip2 writer; Debian's bzip2 is one of berth's deps.
		bin, err := exec.LookPath("bzip2")
		if err != nil {
			t.Skip("bzip2 is not installed (scripts/deps.sh installs it)")
		}
		cmd := exec.Command(bin, "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var buf bytes.Buffer
	w, err := archive.CompressStream(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadReplacesTagsAndIsIdempotent(t *testing.T) {
	s := newService(t, drivers[0])
	ctx := context.Background()
	old := importBusybox(t, s, "app:v1")
	a := twoLayerImage(t, "a", "app:v1")
	arc := tarOf(t, docker25Entries(t, a))
	got, err := loadBytes(t, s, arc)
	if err != nil || got[0].Replaced["app:v1"].String() != old {
		t.Fatalf("first load: %+v %v", got, err)
	}
	before := storeListing(t, s)
	got, err = loadBytes(t, s, arc)
	if err != nil || len(got[0].Replaced) != 0 || got[0].Tags[0] != "app:v1" {
		t.Fatalf("second load: %+v %v", got, err)
	}
	if after := storeListing(t, s); !slices.Equal(before, after) {
		t.Fatalf("reloading changed the stores:\n%q\n%q", before, after)
	}
	ins, err := s.ImageInspect(ctx, old)
	if err != nil || len(ins.RepoTags) != 0 {
		t.Fatalf("old image keeps its tag: %+v %v", ins.RepoTags, err)
	}
}

func TestLoadProgress(t *testing.T) {
	s := newService(t, drivers[0])
	big := layerTar(t, fxReg("data", strings.Repeat("0123456789abcdef", 256<<10))) // 4 MiB
	img := newFxImage(t, "big", []string{"big:1"}, big, layerTar(t, fxReg("small", "x")))
	var steps []LayerProgress
	_, err := s.LoadImages(context.Background(), bytes.NewReader(tarOf(t, docker25Entries(t, img))), LoadOptions{
		Progress: func(p LayerProgress) { steps = append(steps, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	per := map[digest.Digest][]LayerProgress{}
	for _, p := range steps {
		per[p.DiffID] = append(per[p.DiffID], p)
	}
	if len(per) != 2 {
		t.Fatalf("progress for %d layers: %+v", len(per), steps)
	}
	bigSteps := per[digest.FromBytes(big)]
	last := bigSteps[len(bigSteps)-1]
	if len(bigSteps) < 5 || last.Current != last.Total || last.Total != int64(len(big)) {
		t.Fatalf("big layer progress: %d steps, last %+v", len(bigSteps), last)
	}
	for i := 1; i < len(bigSteps); i++ {
		if bigSteps[i].Current <= bigSteps[i-1].Current {
			t.Fatalf("progress went backwards: %+v", bigSteps)
		}
	}
}

// TestLoadBadInputAddsNothing feeds broken archives to a store that holds
// an image already, and checks each fails with its reason and leaves the
// blobs, snapshots, ingests and records exactly as they were.
func TestLoadBadInputAddsNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		importBusybox(t, s, "busybox:latest")
		good := twoLayerImage(t, "good", "good:1")
		bad := twoLayerImage(t, "bad", "bad:1")
		before := storeListing(t, s)
		imagesBefore, _ := s.Images(ctx, ListOptions{All: true})
		for _, tc := range badArchives(t, good, bad) {
			_, err := loadBytes(t, s, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
				continue
			}
			if !errdefs.InvalidArgument(err) && !errdefs.NotFound(err) {
				t.Errorf("%s: error kind: %v", tc.name, err)
			}
			if after := storeListing(t, s); !slices.Equal(before, after) {
				t.Fatalf("%s: stores changed:\nbefore %q\nafter  %q", tc.name, before, after)
			}
			imagesAfter, _ := s.Images(ctx, ListOptions{All: true})
			if len(imagesAfter) != len(imagesBefore) {
				t.Fatalf("%s: images: %+v", tc.name, imagesAfter)
			}
		}
	})
}

type badCase struct {
	name string
	data []byte
	want string
}

func badArchives(t *testing.T, good, bad fxImage) []badCase {
	whole := tarOf(t, docker25Entries(t, good))
	without := func(es []fxEntry, drop string) []fxEntry {
		return slices.DeleteFunc(slices.Clone(es), func(e fxEntry) bool { return e.name == drop })
	}
	replace := func(es []fxEntry, name string, body []byte) []fxEntry {
		out := slices.Clone(es)
		for i := range out {
			if out[i].name == name {
				out[i].body = body
			}
		}
		return out
	}
	layer1 := "blobs/sha256/" + good.diffIDs()[1].Encoded()
	hugeManifest := bytes.Repeat([]byte(" "), maxManifestSize+1)
	d25 := docker25Entries(t, good)
	oci := ociEntries(t, good, "good:1")
	// bad's top layer differs from what its config says: found only when
	// extracting, after good and bad's base layer are already unpacked.
	legacyBad := legacyEntries(t, good, bad)
	for i, e := range legacyBad {
		if bytes.Equal(e.body, bad.layers[1]) {
			legacyBad[i].body = layerTar(t, fxReg("etc/motd", "tampered"))
		}
	}
	return []badCase{
		{"truncated", whole[:len(whole)/2], "truncated"},
		{"truncated gzip", gzipBytes(t, whole)[:len(gzipBytes(t, whole))-20], "unexpected EOF"},
		{"garbage", bytes.Repeat([]byte("garbage!"), 4096), "corrupt"},
		{"no manifest", tarOf(t, []fxEntry{{name: "hello.txt", body: []byte("hi")}}), "neither manifest.json nor index.json"},
		{"missing layer blob", tarOf(t, without(d25, layer1)), "not in the archive"},
		{"oci missing blob", tarOf(t, without(oci, "blobs/sha256/"+good.id().Encoded())), "not in the archive"},
		{"digest mismatch", tarOf(t, replace(d25, layer1, layerTar(t, fxReg("x", "y")))), "digest mismatch"},
		{"diff id mismatch mid-load", tarOf(t, legacyBad), "does not match the config's diff ID"},
		{"dot-dot entry", tarOf(t, append(slices.Clone(d25), fxEntry{name: "blobs/../../evil", body: []byte("x")})), "path traversal"},
		{"absolute entry", tarOf(t, append([]fxEntry{{name: "/etc/evil", body: []byte("x")}}, d25...)), "absolute"},
		{"escaping symlink", tarOf(t, append(slices.Clone(d25), fxEntry{name: "a/layer.tar", typ: tar.TypeSymlink, link: "../../etc/shadow"})), "leaves the archive"},
		{"absolute symlink", tarOf(t, append(slices.Clone(d25), fxEntry{name: "layer.tar", typ: tar.TypeSymlink, link: "/etc/shadow"})), "absolute path"},
		{"manifest path traversal", tarOf(t, replace(d25, "manifest.json", []byte(`[{"Config":"../config.json","Layers":[]}]`))), "path traversal"},
		{"oversized manifest.json", tarOf(t, replace(d25, "manifest.json", bytes.Repeat([]byte(" "), maxMetaSize+1))), "more than the 8388608 allowed"},
		{"oversized config", tarOf(t, append(slices.Clone(d25), fxEntry{name: "big.json", body: bytes.Repeat([]byte(" "), maxConfigSize+1)}, fxEntry{name: "manifest.json", body: []byte(`[{"Config":"big.json","Layers":[]}]`)})), "larger than"},
		{"oversized manifest blob", tarOf(t, []fxEntry{fxBlob(hugeManifest), {name: "index.json", body: mustJSON(t, ocispec.Index{Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(hugeManifest), Size: int64(len(hugeManifest))}}})}}), "more than the 4194304 allowed"},
		{"layer count", tarOf(t, replace(d25, "manifest.json", []byte(fmt.Sprintf(`[{"Config":"blobs/sha256/%s","Layers":[]}]`, good.id().Encoded())))), "config lists 2 layers, the manifest 0"},
		{"bad tag", tarOf(t, replace(d25, "manifest.json", []byte(fmt.Sprintf(`[{"Config":"blobs/sha256/%s","RepoTags":["Not A Tag"],"Layers":[]}]`, good.id().Encoded())))), `tag "Not A Tag"`},
		{"bad json", tarOf(t, replace(d25, "manifest.json", []byte(`[{`))), "manifest.json"},
		{"link loop", tarOf(t, append(replace(d25, "manifest.json", []byte(`[{"Config":"a","Layers":[]}]`)),
			fxEntry{name: "a", typ: tar.TypeSymlink, link: "b"}, fxEntry{name: "b", typ: tar.TypeSymlink, link: "a"})), "too many levels of links"},
		{"device entry", tarOf(t, append(slices.Clone(d25), fxEntry{name: "dev", typ: tar.TypeChar})), "unsupported type"},
	}
}

// TestConcurrentLoads loads one archive several times at once: every load
// succeeds and the store ends with one copy of each layer.
func TestConcurrentLoads(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		a := twoLayerImage(t, "a", "app:v1")
		b := newFxImage(t, "b", []string{"app:v2"}, a.layers[0], layerTar(t, fxReg("b", "b")))
		arc := tarOf(t, docker25Entries(t, a, b))
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := s.LoadImages(context.Background(), bytes.NewReader(arc), LoadOptions{})
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		checkFixture(t, s, a.id(), "a")
		var snaps []string
		for _, e := range storeListing(t, s) {
			if strings.HasPrefix(e, "snapshot ") || strings.HasPrefix(e, "ingest ") {
				snaps = append(snaps, e)
			}
		}
		if len(snaps) != 3 {
			t.Fatalf("want the 3 layers' snapshots and no ingests, got %q", snaps)
		}
		removeAll(t, s)
	})
}

// TestLoadPicksPresentPlatform loads an index whose best entry for this
// host is not in the archive (Docker's containerd store saves only the
// platforms it has): the next one that is present is taken.
func TestLoadPicksPresentPlatform(t *testing.T) {
	s := newService(t, drivers[0])
	a := twoLayerImage(t, "a")
	entries := ociEntries(t, a, "app:v1")
	var outer, inner ocispec.Index
	byName := map[string]int{}
	for i, e := range entries {
		byName[e.name] = i
	}
	if err := json.Unmarshal(entries[byName["index.json"]].body, &outer); err != nil {
		t.Fatal(err)
	}
	innerName := "blobs/sha256/" + outer.Manifests[0].Digest.Encoded()
	if err := json.Unmarshal(entries[byName[innerName]].body, &inner); err != nil {
		t.Fatal(err)
	}
	// The host's entry loses its platform; a missing manifest with the
	// exact platform goes first.
	for i := range inner.Manifests {
		if p := inner.Manifests[i].Platform; p != nil && p.Architecture == runtime.GOARCH {
			missing := inner.Manifests[i]
			missing.Digest = digest.FromString("not in the archive")
			inner.Manifests[i].Platform = nil
			inner.Manifests = append([]ocispec.Descriptor{missing}, inner.Manifests...)
			break
		}
	}
	ib := mustJSON(t, inner)
	entries[byName[innerName]] = fxBlob(ib)
	outer.Manifests[0].Digest, outer.Manifests[0].Size = digest.FromBytes(ib), int64(len(ib))
	entries[byName["index.json"]].body = mustJSON(t, outer)
	got, err := loadBytes(t, s, tarOf(t, entries))
	if err != nil || len(got) != 1 || got[0].ID != a.id() {
		t.Fatalf("load: %+v %v", got, err)
	}
	checkFixture(t, s, a.id(), "a")
}

// TestLoadRestoresLostLayerTar loads an image whose layers exist but whose
// uncompressed tars are gone from the content store: the load puts them
// back from the archive's gzip layers, so save works again.
func TestLoadRestoresLostLayerTar(t *testing.T) {
	s := newService(t, drivers[0])
	ctx := context.Background()
	a := twoLayerImage(t, "a", "app:v1")
	if _, err := loadBytes(t, s, tarOf(t, docker25Entries(t, a))); err != nil {
		t.Fatal(err)
	}
	for _, d := range a.diffIDs() {
		if err := s.content.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveImages(ctx, []string{"app:v1"}, io.Discard); err == nil {
		t.Fatal("save without layer tars succeeded")
	}
	if _, err := loadBytes(t, s, tarOf(t, ociEntries(t, a, "app:v1"))); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveImages(ctx, []string{"app:v1"}, io.Discard); err != nil {
		t.Fatalf("save after the reload: %v", err)
	}
}
