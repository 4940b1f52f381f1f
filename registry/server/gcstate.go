package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/storage"
)

// Objects of the garbage collector, beside the layout of doc.go:
//
//	gc/state                 {"run","active","started","finished",...}: the
//	                         last or current collection
//	gc/lease/<generation>    {"owner","expires"}: the collector holding the
//	                         lease (lease.go)
//	gc/doomed/<path>         {"run","state":"doomed"|"deleting"}: the object at
//	                         <path> (a blob link or a manifest revision) is
//	                         about to be deleted
//	gc/rescued/<path>        a request committed a reference to <path> while
//	                         it was doomed; the collector must keep it
//
// A request that commits a reference to a blob or a revision (an upload's
// link, a mount, a manifest) reads gc/state before its checks and again
// after its commit. When no collection ran in between, the next collection
// will see the reference. Otherwise it looks at the doom markers of what it
// references: a doomed object is rescued (the collector reads rescues after
// marking an object "deleting"), one being deleted is waited for, and then
// the request checks that everything it references still exists. The
// collector marks every candidate doomed, marks the whole registry again
// (seeing what requests committed meanwhile), and only then deletes what is
// still garbage, one object at a time: "deleting", read the rescue, delete.
const (
	gcStatePath   = "gc/state"
	gcLeaseDir    = "gc/lease"
	gcDoomedDir   = "gc/doomed"
	gcRescuedDir  = "gc/rescued"
	markDoomed    = "doomed"
	markDeleting  = "deleting"
	deletingLease = 60 * time.Second // a "deleting" marker older than this is abandoned
)

// GCState is the content of gc/state: the running or the last collection.
type GCState struct {
	Run      string    `json:"run"`
	Active   bool      `json:"active"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Report   *GCReport `json:"report,omitempty"`
	Error    string    `json:"error,omitempty"`
}

type doomMarker struct {
	Run   string `json:"run"`
	State string `json:"state"`
}

func doomedPath(p string) string  { return gcDoomedDir + "/" + p }
func rescuedPath(p string) string { return gcRescuedDir + "/" + p }

// gcState reads gc/state; a registry that never collected has a zero state.
func (s *store) gcState(ctx context.Context) (GCState, error) {
	var st GCState
	err := s.getJSON(ctx, gcStatePath, &st)
	if errors.Is(err, errdefs.ErrNotFound) {
		return GCState{}, nil
	}
	return st, err
}

// guard is what a request read of gc/state before its checks.
type guard struct{ before GCState }

func (s *store) startGuard(ctx context.Context) (guard, error) {
	st, err := s.gcState(ctx)
	return guard{before: st}, err
}

// errGCBusy is answered when a request waited too long for a collection
// deleting what it references; the client may retry.
var errGCBusy = fmt.Errorf("garbage collection in progress: %w", errdefs.ErrUnavailable)

// protect makes the references a request has just committed to paths (blob
// links and revisions) safe from a collection that ran during the request.
// It returns the paths that a collection deleted anyway, before the request
// committed; the caller must restore them or fail.
func (s *store) protect(ctx context.Context, g guard, paths []string) ([]string, error) {
	quiet, err := s.gcQuiet(ctx, g)
	if err != nil || quiet {
		return nil, err
	}
	return s.protectPaths(ctx, paths)
}

// gcQuiet reports whether no collection ran since the guard was taken, so
// the next one will see what the request committed.
func (s *store) gcQuiet(ctx context.Context, g guard) (bool, error) {
	after, err := s.gcState(ctx)
	if err != nil {
		return false, err
	}
	return !g.before.Active && !after.Active && g.before.Run == after.Run, nil
}

// protectPaths rescues every path, then returns those no longer whole.
func (s *store) protectPaths(ctx context.Context, paths []string) ([]string, error) {
	for _, p := range paths {
		if err := s.rescue(ctx, p); err != nil {
			return nil, err
		}
	}
	var lost []string
	for _, p := range paths {
		ok, err := s.exists(ctx, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			lost = append(lost, p)
		}
	}
	return lost, nil
}

// rescue handles one path's doom marker: a doomed path is rescued, one being
// deleted is waited for (bounded by the lease a collector honours).
func (s *store) rescue(ctx context.Context, p string) error {
	var m doomMarker
	err := s.getJSON(ctx, doomedPath(p), &m)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if m.State == markDoomed {
		if err := s.d.Put(ctx, rescuedPath(p), []byte(m.Run)); err != nil {
			return err
		}
		// Read again after writing the rescue: if the collector had not yet
		// marked the path "deleting", it will read our rescue.
		err = s.getJSON(ctx, doomedPath(p), &m)
		if errors.Is(err, errdefs.ErrNotFound) || (err == nil && m.State == markDoomed) {
			return nil
		} else if err != nil {
			return err
		}
	}
	// A marker much older than the lease is a dead collector's: nothing
	// acts on it any more.
	if info, err := s.d.Stat(ctx, doomedPath(p)); err == nil && time.Since(info.ModTime) > 2*deletingLease {
		return nil
	}
	deadline := time.Now().Add(deletingLease + 5*time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := s.d.Stat(ctx, doomedPath(p)); errors.Is(err, errdefs.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	// The collector that marked it died mid-delete: past its lease it
	// deletes nothing more, so what exists now stays.
	return nil
}

// exists reports whether a protected path is still whole: a revision object,
// or a blob link whose data is there.
func (s *store) exists(ctx context.Context, p string) (bool, error) {
	var err error
	if d, ok := blobOfLinkPath(p); ok {
		_, err = s.blob(ctx, d)
	} else {
		_, err = s.d.Stat(ctx, p)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *store) putState(ctx context.Context, st GCState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.d.Put(ctx, gcStatePath, b)
}

// blobOfLinkPath parses "blobs/<alg>/<hex>/link".
func blobOfLinkPath(p string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(p, "blobs/")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "/link")
	alg, hex, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, d.Validate() == nil
}

// gcView caches gc/state for a second, for the HEAD hint below.
type gcView struct {
	mu     sync.Mutex
	at     time.Time
	active bool
}

// doomedHint reports whether a collection is about to delete blob d. A push
// that HEADs a blob and skips its upload would otherwise have its manifest
// refused once the blob is gone; answering 404 makes it upload the blob
// again. Only a hint: a stale answer costs an upload or a retry, never data.
func (s *Server) doomedHint(ctx context.Context, d digest.Digest) bool {
	v := &s.gcView
	v.mu.Lock()
	if time.Since(v.at) > time.Second {
		st, err := s.st.gcState(ctx)
		v.at, v.active = time.Now(), err == nil && st.Active
	}
	active := v.active
	v.mu.Unlock()
	if !active {
		return false
	}
	_, err := s.st.d.Stat(ctx, doomedPath(blobLinkPath(d)))
	return err == nil
}

// LastGC reads gc/state: the running or the last collection over d (zero
// when none ran). Replicas scheduling collections over one storage use it
// to skip a run another replica has just done.
func LastGC(ctx context.Context, d storage.Driver) (GCState, error) {
	return (&store{d: d}).gcState(ctx)
}
