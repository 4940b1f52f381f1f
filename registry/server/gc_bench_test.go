package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry/storage/fs"
)

// benchTree writes a registry layout straight to files (as the fs driver
// lays it out, without its fsyncs): repos repositories of images images
// each (a config and three layers, one layer shared by all images of the
// repository), every other image untagged, plus one orphan blob per image.
// Everything is dated two hours back, past the default grace period. It
// returns the number of blobs.
func benchTree(tb testing.TB, root string, repos, images int) int {
	tb.Helper()
	old := time.Now().Add(-2 * time.Hour)
	write := func(p string, b []byte) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chtimes(full, old, old); err != nil {
			tb.Fatal(err)
		}
	}
	blobs := 0
	blob := func(repo string, content []byte) digest.Digest {
		d := digest.FromBytes(content)
		id := newID()
		write(dataPath(id), content)
		l, _ := json.Marshal(blobLink{Data: dataPath(id), Size: int64(len(content))})
		write(blobLinkPath(d), l)
		write(layerPath(repo, d), nil)
		blobs++
		return d
	}
	for r := range repos {
		repo := fmt.Sprintf("ns%d/app%d", r%10, r)
		shared := blob(repo, []byte("shared base layer of "+repo))
		for i := range images {
			desc := func(mt string, d digest.Digest) map[string]any {
				return map[string]any{"mediaType": mt, "digest": d, "size": 10}
			}
			layers := []any{desc("application/vnd.oci.image.layer.v1.tar+gzip", shared)}
			for l := range 2 {
				layers = append(layers, desc("application/vnd.oci.image.layer.v1.tar+gzip", blob(repo, fmt.Appendf(nil, "%s layer %d/%d", repo, i, l))))
			}
			cfg := blob(repo, fmt.Appendf(nil, `{"os":"linux","image":"%s/%d"}`, repo, i))
			m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifestType,
				"config": desc("application/vnd.oci.image.config.v1+json", cfg), "layers": layers})
			md := blob(repo, m)
			rev, _ := json.Marshal(revision{MediaType: mtOCIManifestType})
			write(revisionPath(repo, md), rev)
			if i%2 == 0 {
				write(tagPath(repo, fmt.Sprintf("v%d", i)), []byte(md.String()))
			}
			blob(repo, fmt.Appendf(nil, "orphan %s %d", repo, i))
		}
	}
	return blobs
}

const mtOCIManifestType = "application/vnd.oci.image.manifest.v1+json"

// BenchmarkGC times collections of a registry of 200 repositories, 20
// images each: 13,000 blobs. "mark" is a dry run (the two marks of a real
// collection cost twice that); "collect" deletes the untagged images and
// the orphans, about half the blobs, from a fresh tree each time.
//
//	go test -run '^$' -bench GC -benchtime 3x ./registry/server/
func BenchmarkGC(b *testing.B) {
	const repos, images = 200, 20
	for _, tc := range []struct {
		name string
		opts GCOptions
		keep bool // the tree survives an iteration
	}{
		{"mark", GCOptions{DryRun: true, DeleteUntagged: true}, true},
		{"collect-keep-untagged", GCOptions{}, false},
		{"collect-delete-untagged", GCOptions{DeleteUntagged: true}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var root string
			var blobs int
			var rep *GCReport
			for i := 0; b.Loop(); i++ {
				if root == "" || !tc.keep {
					b.StopTimer()
					root = b.TempDir()
					blobs = benchTree(b, root, repos, images)
					b.StartTimer()
				}
				d, err := fs.New(root)
				if err != nil {
					b.Fatal(err)
				}
				opts := tc.opts
				if rep, err = Collect(b.Context(), d, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(blobs), "blobs")
			b.ReportMetric(float64(rep.DeletedBlobs), "deleted-blobs")
			b.ReportMetric(float64(rep.DeletedManifests), "deleted-manifests")
		})
	}
}
