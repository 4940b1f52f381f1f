package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

const pullPushRounds = 3

// BenchmarkPullPush times `push` of the multi-layer fixture to an empty
// registry (a fresh one each run) and `pull` of it into a store that holds
// none of its layers (removed, untimed, after each run), through a
// registry on loopback: the CNCF registry when it is installed, else
// berth's. The floors are what no engine can beat on this machine: for a
// push, compressing the layers (pgzip on all cores) and uploading them;
// for a pull, downloading them (three at a time, as pulls do) and
// decompressing them on one core. (Unpacking 5,800 files is no floor
// here: creating a file costs 0.3-0.7 ms on this disk, and dockerd's
// extraction beat a plain archive/tar loop.)
func BenchmarkPullPush(b *testing.B) {
	es := startEngines(b)
	layers := multiLayers(b)
	archive := filepath.Join(b.TempDir(), "multi.tar")
	writeDockerArchive(b, archive, multiImage, layers)
	newRegistry := func() *registry {
		if r := startCNCF(b); r != nil {
			return r
		}
		return startBerthRegistry(b)
	}
	for _, e := range es.all {
		e.must(b, "load", "-i", archive)
		b.Cleanup(func() { e.run(nil, "rmi", multiImage) })
	}
	blobs := gzipAll(b, layers)
	var zipTimes, unzipTimes []float64
	push := func(i int) float64 {
		reg := newRegistry()
		defer reg.stop()
		if i == len(es.all) {
			start := time.Now()
			blobs = gzipAll(b, layers)
			zipTimes = append(zipTimes, time.Since(start).Seconds())
			return uploadBlobs(b, reg, blobs)
		}
		e := es.all[i]
		ref := reg.addr + "/berth-bench/multi:v1"
		e.must(b, "tag", multiImage, ref)
		defer e.must(b, "rmi", ref)
		return e.timed(b, append(append([]string{"push"}, e.tlsOff...), ref)...)
	}
	pushW := fmt.Sprintf("push: %d layers to an empty registry", len(layers))
	pullW := fmt.Sprintf("pull: %d layers, none present", len(layers))
	for range b.N {
		runs := alternate(pullPushRounds, len(es.all)+1, push)
		reg := newRegistry()
		note := describe(layers) + "; through the " + reg.name + " on loopback"
		recordAll(b, es, pushW, note, runs, floorRuns{"upload of the layers, 3 at once", runs[len(es.all)]},
			floorRuns{"gzip of the layers, all cores", zipTimes})

		ref := reg.addr + "/berth-bench/multi:v1"
		es.all[0].must(b, "tag", multiImage, ref)
		es.all[0].must(b, "push", ref)
		for _, e := range es.all { // the pulls must fetch every layer
			e.run(nil, "rmi", ref)
			e.must(b, "rmi", multiImage)
		}
		pulled := manifestLayers(b, reg, "berth-bench/multi", "v1")
		pull := func(i int) float64 {
			if i == len(es.all) {
				t, data := downloadBlobs(b, reg, "berth-bench/multi", pulled)
				unzipTimes = append(unzipTimes, gunzipAll(b, data))
				return t
			}
			e := es.all[i]
			defer e.must(b, "rmi", ref)
			return e.timed(b, append(append([]string{"pull"}, e.tlsOff...), ref)...)
		}
		runs = alternate(pullPushRounds, len(es.all)+1, pull)
		recordAll(b, es, pullW, note+"; layers as berth pushed them", runs, floorRuns{"download of the layers, 3 at once", runs[len(es.all)]},
			floorRuns{"gunzip of the layers, one core", unzipTimes})
		for _, e := range es.all {
			e.must(b, "load", "-i", archive)
		}
	}
}

// floorRuns is a floor's name and runs.
type floorRuns struct {
	name string
	runs []float64
}

// recordAll records each engine's runs (the first len(es.all) of runs)
// and the floors measured in the same loop.
func recordAll(b *testing.B, es *engines, workload, note string, runs [][]float64, floors ...floorRuns) {
	b.Helper()
	for i, e := range es.all {
		r := Result{Workload: workload, System: e.name, Runs: runs[i]}
		if i == 0 {
			r.Note = note
		}
		record(b, r)
	}
	for _, f := range floors {
		record(b, Result{Workload: workload, System: f.name, Floor: true, Runs: f.runs})
	}
	es.recordSkips(b, workload)
}

// uploadBlobs pushes blobs to reg, three at a time, and returns the time.
func uploadBlobs(b *testing.B, reg *registry, blobs [][]byte) float64 {
	b.Helper()
	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(3)
	for _, blob := range blobs {
		g.Go(func() error {
			_, err := pushBlob(ctx, http.DefaultClient, "http://"+reg.addr, "berth-bench/floor", blob)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}

// manifestLayers is the layer descriptors of repo:tag.
func manifestLayers(b *testing.B, reg *registry, repo, tag string) []ocispec.Descriptor {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+reg.addr+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, "+ocispec.MediaTypeImageManifest)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var m ocispec.Manifest
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("manifest %s:%s: %s %v", repo, tag, res.Status, err)
	}
	return m.Layers
}

// downloadBlobs GETs the layers into memory, three at a time, and returns
// the time and the blobs.
func downloadBlobs(b *testing.B, reg *registry, repo string, layers []ocispec.Descriptor) (float64, [][]byte) {
	b.Helper()
	out := make([][]byte, len(layers))
	start := time.Now()
	g := errgroup.Group{}
	g.SetLimit(3)
	for i, l := range layers {
		g.Go(func() error {
			res, err := http.Get("http://" + reg.addr + "/v2/" + repo + "/blobs/" + l.Digest.String())
			if err != nil {
				return err
			}
			defer res.Body.Close()
			buf := bytes.NewBuffer(make([]byte, 0, l.Size))
			if _, err := io.Copy(buf, res.Body); err != nil {
				return fmt.Errorf("blob %s: %w", l.Digest, err)
			}
			out[i] = buf.Bytes()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds(), out
}

// gunzipAll decompresses the blobs one after the other on one core.
func gunzipAll(b *testing.B, blobs [][]byte) float64 {
	b.Helper()
	start := time.Now()
	for _, blob := range blobs {
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start).Seconds()
}
