package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"berth/content"
	"berth/mount"
	"berth/snapshot"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The fixtures below build archives the way Docker, podman and OCI tools
// write them, from small layers made in the test, so that every format can
// be loaded without a docker daemon.

var fixtureTime = time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)

type fxFile struct {
	name, body string
	typ        byte
	link       string
}

func fxReg(name, body string) fxFile { return fxFile{name: name, body: body, typ: tar.TypeReg} }
func fxDir(name string) fxFile       { return fxFile{name: name, typ: tar.TypeDir} }

// layerTar is an uncompressed layer changeset.
func layerTar(t testing.TB, files ...fxFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: f.typ, Name: f.name, Linkname: f.link, Mode: 0o644, ModTime: fixtureTime, Size: int64(len(f.body))}
		if f.typ == tar.TypeDir {
			hdr.Mode, hdr.Size = 0o755, 0
		}
		if f.typ == tar.TypeSymlink {
			hdr.Mode, hdr.Size = 0o777, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(f.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fxImage is an image as a test builds it: layer tars, a config naming
// their digests, and the tags an archive gives it.
type fxImage struct {
	layers [][]byte
	config []byte
	tags   []string
}

func (f fxImage) id() digest.Digest { return digest.FromBytes(f.config) }

func (f fxImage) diffIDs() []digest.Digest {
	var out []digest.Digest
	for _, l := range f.layers {
		out = append(out, digest.FromBytes(l))
	}
	return out
}

func newFxImage(t testing.TB, label string, tags []string, layers ...[]byte) fxImage {
	t.Helper()
	f := fxImage{layers: layers, tags: tags}
	cfg := map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": fixtureTime,
		"config": map[string]any{"Cmd": []string{"sh"}, "Labels": map[string]string{"fixture": label}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": f.diffIDs()},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.config = b
	return f
}

// twoLayerImage is a small image whose second layer deletes and changes
// files of the first.
func twoLayerImage(t testing.TB, label string, tags ...string) fxImage {
	base := layerTar(t, fxDir("etc/"), fxReg("etc/os-release", "ID=fixture\n"), fxReg("etc/gone", "x"), fxDir("bin/"), fxReg("bin/tool", "#!/bin/sh\necho "+label+"\n"))
	top := layerTar(t, fxDir("etc/"), fxReg("etc/.wh.gone", ""), fxReg("etc/motd", "hello "+label+"\n"))
	return newFxImage(t, label, tags, base, top)
}

type fxEntry struct {
	name string
	body []byte
	typ  byte
	link string
}

func fxBlob(b []byte) fxEntry {
	return fxEntry{name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), body: b}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarOf writes entries in the given order.
func tarOf(t testing.TB, entries []fxEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.name, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body)), ModTime: fixtureTime}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body[:hdr.Size])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// docker25Entries is what `docker save` writes since Docker 25 with the
// classic store: an OCI layout plus manifest.json and repositories, and the
// layers' v1 JSON documents as blobs nothing references.
func docker25Entries(t testing.TB, imgs ...fxImage) []fxEntry {
	t.Helper()
	entries := []fxEntry{{name: "blobs/", typ: tar.TypeDir}, {name: "blobs/sha256/", typ: tar.TypeDir}}
	var items []manifestItem
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	repos := map[string]map[string]string{}
	for _, img := range imgs {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.id(), Size: int64(len(img.config))}}
		m.SchemaVersion = 2
		item := manifestItem{Config: "blobs/sha256/" + img.id().Encoded(), RepoTags: img.tags}
		for i, l := range img.layers {
			// Docker 25 also writes each layer's v1 JSON as an unreferenced blob.
			v1 := fmt.Sprintf(`{"id":"%s","created":"1970-01-01T00:00:00Z","container_config":{"Cmd":null},"os":"linux"}`, digest.FromString(fmt.Sprint(i, img.id())).Encoded())
			entries = append(entries, fxBlob([]byte(v1)), fxBlob(l))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l), Size: int64(len(l))})
			item.Layers = append(item.Layers, "blobs/sha256/"+digest.FromBytes(l).Encoded())
		}
		mb := mustJSON(t, m)
		entries = append(entries, fxBlob(img.config), fxBlob(mb))
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		if len(img.tags) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, tag := range img.tags {
			ref, err := parseLoadTag(tag)
			if err != nil {
				t.Fatal(err)
			}
			d := desc
			d.Annotations = map[string]string{annotationImageName: ref.String(), ocispec.AnnotationRefName: ref.Tag()}
			idx.Manifests = append(idx.Manifests, d)
			name, _, _ := cutLast(tag, ":")
			if repos[name] == nil {
				repos[name] = map[string]string{}
			}
			repos[name][ref.Tag()] = digest.FromBytes(img.layers[len(img.layers)-1]).Encoded()
		}
		items = append(items, item)
	}
	return append(entries,
		fxEntry{name: "index.json", body: mustJSON(t, idx)},
		fxEntry{name: "manifest.json", body: mustJSON(t, items)},
		fxEntry{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		fxEntry{name: "repositories", body: mustJSON(t, repos)})
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// legacyEntries is what `docker save` wrote up to Docker 24: a directory
// per layer (named by a v1 ID) with layer.tar, json and VERSION, the config
// as <id>.json, manifest.json and repositories. Layers whose tar repeats
// an earlier one are symlinks to it, as Docker wrote them.
func legacyEntries(t testing.TB, imgs ...fxImage) []fxEntry {
	t.Helper()
	var entries []fxEntry
	var items []manifestItem
	repos := map[string]map[string]string{}
	seen := map[digest.Digest]string{}
	for n, img := range imgs {
		item := manifestItem{Config: img.id().Encoded() + ".json", RepoTags: img.tags}
		var top string
		for i, l := range img.layers {
			v1 := digest.FromString(fmt.Sprintf("v1 %d %d %s", n, i, img.id())).Encoded()
			top = v1
			entries = append(entries, fxEntry{name: v1 + "/", typ: tar.TypeDir},
				fxEntry{name: v1 + "/VERSION", body: []byte("1.0")},
				fxEntry{name: v1 + "/json", body: []byte(`{"id":"` + v1 + `"}`)})
			d := digest.FromBytes(l)
			if prev, ok := seen[d]; ok {
				entries = append(entries, fxEntry{name: v1 + "/layer.tar", typ: tar.TypeSymlink, link: "../" + prev + "/layer.tar"})
			} else {
				seen[d] = v1
				entries = append(entries, fxEntry{name: v1 + "/layer.tar", body: l})
			}
			item.Layers = append(item.Layers, v1+"/layer.tar")
		}
		entries = append(entries, fxEntry{name: img.id().Encoded() + ".json", body: img.config})
		for _, tag := range img.tags {
			name, tg, _ := cutLast(tag, ":")
			if repos[name] == nil {
				repos[name] = map[string]string{}
			}
			repos[name][tg] = top
		}
		items = append(items, item)
	}
	return append(entries,
		fxEntry{name: "manifest.json", body: mustJSON(t, items)},
		fxEntry{name: "repositories", body: mustJSON(t, repos)})
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ociEntries is a plain OCI layout as buildx or containerd write it: gzip
// layers, index.json pointing at a nested index with one manifest per
// platform (the host's, another architecture's, and an attestation), and
// only the OCI ref name annotation on the outer descriptor.
func ociEntries(t testing.TB, img fxImage, refName string) []fxEntry {
	t.Helper()
	var entries []fxEntry
	manifest := func(config []byte, layers [][]byte) []byte {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}}
		m.SchemaVersion = 2
		entries = append(entries, fxBlob(config))
		for _, l := range layers {
			gz := gzipBytes(t, l)
			entries = append(entries, fxBlob(gz))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz), Size: int64(len(gz))})
		}
		b := mustJSON(t, m)
		entries = append(entries, fxBlob(b))
		return b
	}
	host := manifest(img.config, img.layers)
	otherArch := "s390x"
	if runtime.GOARCH == otherArch {
		otherArch = "amd64"
	}
	other := newFxImage(t, "other-arch", nil, layerTar(t, fxReg("wrong", "arch")))
	otherM := manifest(other.config, other.layers)
	att := manifest([]byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`), nil)
	desc := func(b []byte, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)), Platform: p}
	}
	inner := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		desc(otherM, &ocispec.Platform{OS: "linux", Architecture: otherArch}),
		desc(host, &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH, Variant: hostVariant()}),
		desc(att, &ocispec.Platform{OS: "unknown", Architecture: "unknown"}),
	}}
	inner.SchemaVersion = 2
	ib := mustJSON(t, inner)
	entries = append(entries, fxBlob(ib))
	outer := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(ib), Size: int64(len(ib)),
		Annotations: map[string]string{ocispec.AnnotationRefName: refName},
	}}}
	outer.SchemaVersion = 2
	return append(entries,
		fxEntry{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		fxEntry{name: "index.json", body: mustJSON(t, outer)})
}

// storeListing names every blob and snapshot a service holds, to show that
// a failed load left nothing behind.
func storeListing(t testing.TB, s *Service) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	s.content.Walk(ctx, func(i content.Info) error { out = append(out, "blob "+i.Digest.String()); return nil })
	s.sn.Walk(ctx, func(_ context.Context, i snapshot.Info) error { out = append(out, "snapshot "+i.Name); return nil })
	entries, _ := os.ReadDir(filepath.Join(contentRoot(s), "ingest"))
	for _, e := range entries {
		out = append(out, "ingest "+e.Name())
	}
	sort.Strings(out)
	return out
}

func contentRoot(s *Service) string {
	return filepath.Join(filepath.Dir(s.db.Path()), "content")
}

// readImageFile reads a file from an image's root filesystem.
func readImageFile(t testing.TB, s *Service, id digest.Digest, name string) (string, error) {
	t.Helper()
	ctx := context.Background()
	top, err := s.TopLayer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	key := randomKey("test-view-")
	mounts, err := s.sn.View(ctx, key, top)
	if err != nil {
		t.Fatal(err)
	}
	defer s.sn.Remove(ctx, key)
	var body []byte
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		var err error
		body, err = os.ReadFile(filepath.Join(root, name))
		return err
	})
	return string(body), err
}
