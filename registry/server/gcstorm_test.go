package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// stormPusher pushes images built from a shared pool of layers, so blobs
// that became garbage are pushed again, HEAD-skipped and mounted while
// collections run.
type stormPusher struct {
	e       *env
	rng     *rand.Rand
	pool    [][]byte
	retries *atomic.Int64
}

// pushBlobTo uploads content unless the repository has it, by mount from
// another repository, monolithic POST, or chunks.
func (p *stormPusher) pushBlobTo(repo string, content []byte) error {
	d := digest.FromBytes(content)
	if p.e.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil).status == 200 {
		return nil
	}
	switch p.rng.IntN(3) {
	case 0:
		r := p.e.do("POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from=storm/r0", nil)
		if r.status == 201 {
			return nil
		}
		return p.finish(r.header.Get("Location"), d, content)
	case 1:
		return uploadResult(p.e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content))
	default:
		r := p.e.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
		r = p.e.do("PATCH", r.header.Get("Location"), content[:len(content)/2])
		return p.finish(r.header.Get("Location"), d, content[len(content)/2:])
	}
}

func (p *stormPusher) finish(loc string, d digest.Digest, rest []byte) error {
	return uploadResult(p.e.do("PUT", loc+"?digest="+d.String(), rest))
}

// errRetry is a 503 a client retries: a collection kept deleting the blob
// under a push (only with no grace period at all).
var errRetry = errors.New("retry")

func uploadResult(r resp) error {
	switch r.status {
	case 201:
		return nil
	case 503:
		return errRetry
	}
	return fmt.Errorf("upload: %d %s", r.status, r.body)
}

// pushImage pushes a config and two pool layers and tags the manifest,
// starting over when a collection took a blob it had seen before the
// manifest arrived (the client-visible MANIFEST_BLOB_UNKNOWN).
func (p *stormPusher) pushImage(repo, tag string) (digest.Digest, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","tag":%q}`, repo+":"+tag))
	layers := [][]byte{p.pool[p.rng.IntN(len(p.pool))], p.pool[p.rng.IntN(len(p.pool))]}
	var descs []any
	for _, l := range layers {
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.FromBytes(l), "size": len(l)})
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(cfg), "size": len(cfg)},
		"layers": descs})
	// Collections run back to back with a grace far below any real one, so
	// on a loaded machine a push can lose its blobs to several in a row
	// before its manifest lands; what must never happen is losing a blob
	// of an acknowledged manifest.
	for range pushTries {
		for _, b := range append([][]byte{cfg}, layers...) {
			if err := p.pushBlobTo(repo, b); errors.Is(err, errRetry) {
				p.retries.Add(1)
			} else if err != nil {
				return "", err
			}
		}
		r := p.e.do("PUT", "/v2/"+repo+"/manifests/"+tag, body, "Content-Type", mtOCIManifest)
		if r.status == 201 {
			return digest.FromBytes(body), nil
		}
		var eb errorBody
		if json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 || (eb.Errors[0].Code != codeManifestBlobUnknown && r.status != 503) {
			return "", fmt.Errorf("manifest PUT: %d %s", r.status, r.body)
		}
		p.retries.Add(1)
	}
	return "", fmt.Errorf("%s:%s: still racing the collector after %d tries", repo, tag, pushTries)
}

// stormGrace is far below any real grace period: the blobs a push HEADs and
// skips, and untagged manifests, are garbage in the middle of the push. With
// none at all, collections back to back would take every blob between its
// upload and its manifest, and no push would ever finish.
const stormGrace = 30 * time.Millisecond

// pushTries bounds a pusher's attempts at one image.
const pushTries = 40

// TestGCDuringPushStorm runs collections with a tiny grace period back to back
// while four clients push, re-push, mount and delete images drawn from a
// shared pool of layers. Every manifest acknowledged with 201 and not
// deleted since must be whole at the end: not one blob lost.
func TestGCDuringPushStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := make([][]byte, 12)
	for i := range pool {
		pool[i] = bytes.Repeat([]byte{byte(i)}, 1000+i)
	}
	var (
		mu      sync.Mutex
		acked   = map[string]digest.Digest{} // repo:tag -> digest
		retries atomic.Int64
		wg      sync.WaitGroup
		done    = make(chan struct{})
	)
	const pushers, rounds = 4, 30
	for w := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &stormPusher{e: e, rng: rand.New(rand.NewPCG(uint64(w), 7)), pool: pool, retries: &retries}
			for i := range rounds {
				repo, tag := fmt.Sprintf("storm/r%d", p.rng.IntN(3)), fmt.Sprintf("w%d-%d", w, i)
				d, err := p.pushImage(repo, tag)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[repo+":"+tag] = d
				mu.Unlock()
				if i%3 == 2 { // delete an earlier image: garbage for the collector
					old := fmt.Sprintf("w%d-%d", w, i-2)
					mu.Lock()
					for k, od := range acked {
						if k[len(k)-len(old):] == old {
							delete(acked, k)
							e.do("DELETE", "/v2/"+k[:len(k)-len(old)-1]+"/manifests/"+od.String(), nil)
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	runs, deleted := 0, 0
	for stop := false; !stop && runs < 200; runs++ {
		select {
		case <-done:
			stop = true
		default:
		}
		rep, err := Collect(t.Context(), e.driver(), GCOptions{Grace: stormGrace, DeleteUntagged: true})
		if err != nil {
			t.Fatalf("collection %d: %v", runs, err)
		}
		deleted += rep.DeletedBlobs
	}
	<-done
	final := e.collect(GCOptions{DeleteUntagged: true})
	t.Logf("%d collections deleted %d blobs during %d pushes (%d manifest retries); final: %+v", runs, deleted, pushers*rounds, retries.Load(), final)
	if deleted == 0 {
		t.Error("no collection deleted anything: the storm did not exercise the sweep")
	}
	for k, d := range acked {
		repo := k[:bytes.IndexByte([]byte(k), ':')]
		if !e.pullable(repo, d.String()) || !e.pullable(repo, k[len(repo)+1:]) {
			t.Errorf("acknowledged %s (%s) is not whole", k, d)
		}
	}
	if final.LiveBlobs == 0 || t.Failed() {
		return
	}
}
