package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/storage"
	"berth/registry/storage/fs"
)

// collectNow collects with no grace: everything written before the call is
// old enough.
func (e *env) collect(opts GCOptions) *GCReport {
	e.t.Helper()
	if opts.Grace == 0 {
		opts.Grace = time.Nanosecond
	}
	rep, err := Collect(e.t.Context(), e.driver(), opts)
	if err != nil {
		e.t.Fatalf("collect: %v", err)
	}
	return rep
}

func (e *env) driver() storage.Driver {
	e.t.Helper()
	d, err := fs.New(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// pullable checks a manifest and every blob it names can be fetched.
func (e *env) pullable(repo, ref string) bool {
	e.t.Helper()
	r := e.do("GET", "/v2/"+repo+"/manifests/"+ref, nil)
	if r.status != 200 {
		return false
	}
	rf := manifestRefs(r.body)
	for _, b := range rf.blobs {
		if e.do("GET", "/v2/"+repo+"/blobs/"+b.String(), nil).status != 200 {
			return false
		}
	}
	for _, c := range rf.children {
		if !e.pullable(repo, c.String()) {
			return false
		}
	}
	return true
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestGCCollectsUnreferenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pushManifest("keep/app", "v1", mtOCIManifest, e.image("keep/app", "kept layer")).want(t, 201, "")
	orphan := e.pushBlob("keep/app", []byte("pushed, never used"))
	gone := e.image("gone/app", "layer of a deleted image")
	gd := digest.FromBytes(gone)
	e.pushManifest("gone/app", "v1", mtOCIManifest, gone).want(t, 201, "")
	e.do("DELETE", "/v2/gone/app/manifests/"+gd.String(), nil).want(t, 202, "")
	abandoned := e.do("POST", "/v2/keep/app/blobs/uploads/", nil).want(t, 202, "").header.Get("Location")
	e.do("PATCH", abandoned, []byte("half")).want(t, 202, "")

	dry := e.collect(GCOptions{DryRun: true})
	if dry.DeletedBlobs != 3 || !slices.Contains(dry.Candidates, orphan.String()) {
		t.Fatalf("dry run: %+v", dry)
	}
	if !e.pullable("keep/app", "v1") || e.do("HEAD", "/v2/keep/app/blobs/"+orphan.String(), nil).status != 200 {
		t.Fatal("dry run deleted something")
	}
	rep := e.collect(GCOptions{})
	// The orphan, the deleted image's manifest and layer; its config is the
	// kept image's too.
	if rep.DeletedBlobs != 3 || rep.LiveBlobs != 3 || rep.DeletedManifests != 0 {
		t.Fatalf("report %+v", rep)
	}
	if !e.pullable("keep/app", "v1") {
		t.Fatal("tagged image lost")
	}
	e.do("HEAD", "/v2/keep/app/blobs/"+orphan.String(), nil).want(t, 404, "")
	// The upload in progress keeps its session and bytes.
	e.do("GET", abandoned, nil).want(t, 204, "")
	if n := countFiles(t, filepath.Join(e.root, "data")); n != 3+1 {
		t.Fatalf("%d data objects left, want the live blobs' 3 and the upload's", n)
	}
	if _, err := os.Stat(filepath.Join(e.root, "gc", "doomed")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("markers left: %v", err)
	}
	again := e.collect(GCOptions{})
	if again.DeletedBlobs != 0 || again.LiveBlobs != 3 {
		t.Fatalf("second collection %+v", again)
	}
}

func TestGCPolicies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		opts                   GCOptions
		untagged, referrer     bool // still there after
		indexChild, childOfDel bool
	}{
		{"keep-untagged", GCOptions{}, true, true, true, true},
		{"delete-untagged", GCOptions{DeleteUntagged: true}, false, true, true, false},
		{"delete-referrers", GCOptions{DeleteUntagged: true, DeleteReferrers: true}, false, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tagged := e.image("p/app", "tagged")
			e.pushManifest("p/app", "v1", mtOCIManifest, tagged).want(t, 201, "")
			untagged := e.image("p/app", "untagged")
			ud := digest.FromBytes(untagged)
			e.pushManifest("p/app", ud.String(), mtOCIManifest, untagged).want(t, 201, "")
			empty := e.pushBlob("p/app", []byte("{}"))
			sig := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest, "artifactType": "application/x-sig",
				"config":  map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
				"layers":  []any{},
				"subject": map[string]any{"mediaType": mtOCIManifest, "digest": digest.FromBytes(tagged), "size": len(tagged)}})
			sd := digest.FromBytes(sig)
			e.pushManifest("p/app", sd.String(), mtOCIManifest, sig).want(t, 201, "")
			child := e.image("p/app", "arm64 child")
			cd := digest.FromBytes(child)
			e.pushManifest("p/app", cd.String(), mtOCIManifest, child).want(t, 201, "")
			idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex,
				"manifests": []any{map[string]any{"mediaType": mtOCIManifest, "digest": cd, "size": len(child)}}})
			e.pushManifest("p/app", "multi", mtOCIIndex, idx).want(t, 201, "")

			e.collect(tc.opts)
			for _, c := range []struct {
				what string
				ref  string
				want bool
			}{{"tagged", "v1", true}, {"untagged", ud.String(), tc.untagged}, {"referrer", sd.String(), tc.referrer},
				{"index child", cd.String(), tc.indexChild}} {
				if got := e.pullable("p/app", c.ref); got != c.want {
					t.Errorf("%s: pullable = %v, want %v", c.what, got, c.want)
				}
			}
			var refs struct{ Manifests []any }
			e.do("GET", "/v2/p/app/referrers/"+digest.FromBytes(tagged).String(), nil).want(t, 200, "").json(t, &refs)
			if (len(refs.Manifests) == 1) != tc.referrer {
				t.Errorf("referrers list %v", refs.Manifests)
			}
		})
	}
}

func TestGCGracePeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	orphan := e.pushBlob("g/app", []byte("fresh, no manifest yet"))
	rep := e.collect(GCOptions{Grace: time.Hour, DeleteUntagged: true})
	if rep.DeletedBlobs != 0 {
		t.Fatalf("report %+v", rep)
	}
	e.do("HEAD", "/v2/g/app/blobs/"+orphan.String(), nil).want(t, 200, "")
}

// crashOn is a storage driver whose process dies at the n-th Put under a
// prefix: that write and every later write and delete fail.
type crashOn struct {
	storage.Driver
	prefix string
	mu     sync.Mutex
	n      int
}

var errCrashed = errors.New("crashed")

func (c *crashOn) dead(p string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(p, c.prefix) {
		c.n--
	}
	return c.n <= 0
}

// Create passes the fs driver's conditional create through, crashing as
// Put does, so the collector takes its lease as on a real driver.
func (c *crashOn) Create(ctx context.Context, p string, b []byte) error {
	if c.dead(p) {
		return errCrashed
	}
	return c.Driver.(storage.Creator).Create(ctx, p, b)
}

func (c *crashOn) Put(ctx context.Context, p string, b []byte) error {
	if c.dead(p) {
		return errCrashed
	}
	return c.Driver.Put(ctx, p, b)
}

func (c *crashOn) Delete(ctx context.Context, p string) error {
	if c.dead("") {
		return errCrashed
	}
	return c.Driver.Delete(ctx, p)
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

func TestGCInterruptedRunsAgain(t *testing.T) {
	t.Parallel()
	// The third doom marker, or the second "deleting" marker once the five
	// orphans are doomed: mid-mark and mid-sweep.
	for _, n := range []int{3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.pushManifest("i/app", "v1", mtOCIManifest, e.image("i/app", "kept")).want(t, 201, "")
			var orphans []digest.Digest
			for i := range 5 {
				orphans = append(orphans, e.pushBlob("i/app", []byte{byte(i)}))
			}
			d := &crashOn{Driver: e.driver(), prefix: gcDoomedDir + "/", n: n}
			if _, err := Collect(t.Context(), d, GCOptions{Grace: time.Nanosecond}); !errors.Is(err, errCrashed) {
				t.Fatalf("crashed collection: %v", err)
			}
			// Pushes go on beside the dead collection's state and markers.
			e.pushManifest("i/app", "v2", mtOCIManifest, e.image("i/app", "after")).want(t, 201, "")
			e.pushBlob("i/app", []byte{0})
			// Its lock has not expired: the next collection is refused...
			if _, err := Collect(t.Context(), e.driver(), GCOptions{}); !errors.Is(err, errdefs.ErrConflict) {
				t.Fatalf("collection over a held lock: %v", err)
			}
			// ...until it expires.
			if err := e.driver().Delete(t.Context(), gcLeaseDir); err != nil {
				t.Fatal(err)
			}
			e.collect(GCOptions{})
			for _, o := range orphans[1:] {
				e.do("HEAD", "/v2/i/app/blobs/"+o.String(), nil).want(t, 404, "")
			}
			if !e.pullable("i/app", "v1") || !e.pullable("i/app", "v2") {
				t.Fatal("image lost")
			}
		})
	}
}
