package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

const (
	manyClients      = 16
	manyClientRounds = 5
	manyRepo         = "berth-bench/many"
)

// BenchmarkManyClientsPull times manyClients clients pulling the same image
// at once (manifest, config, then the layers three at a time, each
// digest-checked, as a pull fetches them) from berth's registry (the real
// binary) and the CNCF registry, beside the floor: the same requests
// answered from memory by a minimal HTTP server, which is what loopback
// and the clients' own hashing allow.
func BenchmarkManyClientsPull(b *testing.B) {
	layers := multiLayers(b)[:3]
	blobs := gzipAll(b, layers)
	cfg := imageConfig(b, layers)
	regs := []*registry{startBerthRegistry(b)}
	skipped := ""
	if r := startCNCF(b); r != nil {
		regs = append(regs, r)
	} else {
		skipped = cncfRegistry + " is not installed (Debian package docker-registry)"
	}
	var manifest []byte
	for _, reg := range regs {
		manifest = pushImage(b, reg, cfg, blobs)
	}
	floor := serveFromMemory(b, manifest, cfg, blobs)
	targets := append(regs, floor)
	var total int64
	for _, blob := range blobs {
		total += int64(len(blob))
	}
	total += int64(len(cfg) + len(manifest))
	workload := fmt.Sprintf("registry: %d clients pull one image at once", manyClients)
	for range b.N {
		runs := alternate(manyClientRounds, len(targets), func(i int) float64 { return pullAll(b, targets[i]) })
		for i, reg := range targets {
			r := Result{Workload: workload, System: reg.name, Runs: runs[i], Floor: reg == floor}
			if i == 0 {
				r.Note = fmt.Sprintf("%d layers, %d MB compressed, to each of %d clients: %.0f MB per run; the clients' sha256 of every byte shares the cores with the server, so a registry near the floor is limited by its clients", len(blobs), total/1e6, manyClients, float64(total*manyClients)/1e6)
			}
			record(b, r)
		}
		if skipped != "" {
			record(b, Result{Workload: workload, System: "CNCF registry", Skipped: skipped})
		}
	}
}

// pushImage stores the image as manyRepo:v1 and returns its manifest.
func pushImage(b *testing.B, reg *registry, cfg []byte, blobs [][]byte) []byte {
	b.Helper()
	ctx := context.Background()
	base := "http://" + reg.addr
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	d, err := pushBlob(ctx, http.DefaultClient, base, manyRepo, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: d, Size: int64(len(cfg))}
	for _, blob := range blobs {
		d, err := pushBlob(ctx, http.DefaultClient, base, manyRepo, blob)
		if err != nil {
			b.Fatal(err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(blob))})
	}
	body, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	if err := pushManifest(ctx, http.DefaultClient, base, manyRepo, "v1", ocispec.MediaTypeImageManifest, body); err != nil {
		b.Fatal(err)
	}
	return body
}

// serveFromMemory answers the manifest and blob GETs of manyRepo from
// memory, and nothing else.
func serveFromMemory(b *testing.B, manifest, cfg []byte, blobs [][]byte) *registry {
	b.Helper()
	content := map[string][]byte{"/v2/" + manyRepo + "/manifests/v1": manifest}
	for _, blob := range append([][]byte{cfg}, blobs...) {
		content["/v2/"+manyRepo+"/blobs/"+digest.FromBytes(blob).String()] = blob
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := content[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return &registry{name: "the same GETs answered from memory", addr: l.Addr().String(), stop: func() { srv.Close() }}
}

// pullAll runs manyClients pulls at once and returns the wall time until
// the last one is done.
func pullAll(b *testing.B, reg *registry) float64 {
	b.Helper()
	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	for range manyClients {
		// A client of its own per puller: separate connections, as
		// separate machines would have.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 3}}
		g.Go(func() error { return pullOne(ctx, client, "http://"+reg.addr) })
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("%s: %v", reg.name, err)
	}
	return time.Since(start).Seconds()
}

func pullOne(ctx context.Context, client *http.Client, base string) error {
	var m ocispec.Manifest
	raw, err := fetch(ctx, client, base+"/v2/"+manyRepo+"/manifests/v1", "", true)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if _, err := fetch(ctx, client, base+"/v2/"+manyRepo+"/blobs/"+m.Config.Digest.String(), m.Config.Digest, false); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, l := range m.Layers {
		g.Go(func() error {
			_, err := fetch(ctx, client, base+"/v2/"+manyRepo+"/blobs/"+l.Digest.String(), l.Digest, false)
			return err
		})
	}
	return g.Wait()
}

// fetch GETs url and, when want is given, checks the body against it as
// it streams; the body is kept only when keep is set.
func fetch(ctx context.Context, client *http.Client, url string, want digest.Digest, keep bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	var body bytes.Buffer
	w := io.Discard
	if keep {
		w = &body
	}
	if want == "" {
		_, err = io.Copy(w, res.Body)
		return body.Bytes(), err
	}
	v := want.Verifier()
	if _, err := io.Copy(io.MultiWriter(w, v), res.Body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if !v.Verified() {
		return nil, fmt.Errorf("GET %s: digest mismatch", url)
	}
	return body.Bytes(), nil
}
