package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"berth/errdefs"
)

// sweepWorkers bounds the deletions in flight.
const sweepWorkers = 8

func (c *collector) forEach(ctx context.Context, keys []string, fn func(ctx context.Context, key string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepWorkers)
	for _, k := range keys {
		g.Go(func() error { return fn(gctx, k) })
	}
	return g.Wait()
}

func keyList(s candidateSet) []string {
	var out []string
	for k := range s.keys() {
		out = append(out, k)
	}
	return out
}

// doom writes a "doomed" marker for every candidate.
func (c *collector) doom(ctx context.Context, s candidateSet) error {
	return c.forEach(ctx, keyList(s), func(ctx context.Context, k string) error {
		return c.st.putJSON(ctx, doomedPath(k), doomMarker{Run: c.run, State: markDoomed})
	})
}

func (c *collector) undoom(ctx context.Context, s candidateSet) error {
	return c.forEach(ctx, keyList(s), func(ctx context.Context, k string) error {
		return ignoreNotFound(c.st.d.Delete(ctx, doomedPath(k)))
	})
}

func ignoreNotFound(err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// sweep deletes the candidates a second mark confirmed: revisions first (so
// no live revision ever names a deleted blob), then blobs.
func (c *collector) sweep(ctx context.Context, m *markResult, s candidateSet) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepWorkers)
	for _, r := range s.revs {
		g.Go(func() error {
			return c.deleteGuarded(gctx, revKey(r), func(ctx context.Context) error { return c.deleteRevision(ctx, r) },
				func() { c.count(func(rep *GCReport) { rep.DeletedManifests++ }) })
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(sweepWorkers)
	for _, d := range s.blobs {
		b := m.blobs[d]
		g.Go(func() error {
			return c.deleteGuarded(gctx, blobLinkPath(d), func(ctx context.Context) error { return c.deleteBlob(ctx, d, b, m.layers[d]) },
				func() {
					c.count(func(rep *GCReport) { rep.DeletedBlobs++; rep.DeletedBytes += b.size })
				})
		})
	}
	return g.Wait()
}

// deleteGuarded deletes one object under the protocol of gcstate.go: mark it
// "deleting", and delete only when no request rescued it, and only while the
// marker is young enough that a waiting request has not given up on us.
func (c *collector) deleteGuarded(ctx context.Context, key string, del func(context.Context) error, done func()) error {
	if err := c.st.putJSON(ctx, doomedPath(key), doomMarker{Run: c.run, State: markDeleting}); err != nil {
		return err
	}
	marked := time.Now()
	_, err := c.st.d.Stat(ctx, rescuedPath(key))
	switch {
	case err == nil:
		c.count(func(rep *GCReport) { rep.Kept++ })
	case !errors.Is(err, errdefs.ErrNotFound):
		return err
	case time.Since(marked) > deletingLease/2:
		c.log.Warn("gc: storage too slow to delete safely, keeping", "object", key)
		c.count(func(rep *GCReport) { rep.Kept++ })
	default:
		dctx, cancel := context.WithTimeout(ctx, deletingLease/2)
		err := del(dctx)
		cancel()
		if err != nil {
			return err
		}
		done()
	}
	return ignoreNotFound(c.st.d.Delete(ctx, doomedPath(key)))
}

// count updates the report; sweeps run concurrently.
func (c *collector) count(fn func(*GCReport)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.rep)
}

func (c *collector) deleteRevision(ctx context.Context, r revInfo) error {
	if err := ignoreNotFound(c.st.d.Delete(ctx, revisionPath(r.repo, r.d))); err != nil {
		return err
	}
	if r.subject != "" {
		return ignoreNotFound(c.st.d.Delete(ctx, referrerEntry(r.repo, r.subject, r.d)))
	}
	return nil
}

// deleteBlob removes the link first (the blob is gone from that instant),
// then the data the link named when marked, then the repositories' links.
func (c *collector) deleteBlob(ctx context.Context, d digest.Digest, b blobInfo, repos []string) error {
	if err := ignoreNotFound(c.st.d.Delete(ctx, blobLinkPath(d))); err != nil {
		return err
	}
	if strings.HasPrefix(b.data, "data/") && validDataID(strings.TrimPrefix(b.data, "data/")) {
		if err := ignoreNotFound(c.st.d.Delete(ctx, b.data)); err != nil {
			return err
		}
	}
	for _, name := range repos {
		if err := ignoreNotFound(c.st.d.Delete(ctx, layerPath(name, d))); err != nil {
			return err
		}
	}
	return nil
}

func validDataID(id string) bool {
	return len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
}

// sweepData deletes data objects no blob link names and no upload session
// owns, once older than the grace period. Sessions are listed before links:
// an upload that finishes in between has written its link before deleting
// its session, so one list or the other names its data.
func (c *collector) sweepData(ctx context.Context) error {
	ids, err := c.st.listOrEmpty(ctx, "data")
	if err != nil {
		return err
	}
	sessions, err := c.st.listOrEmpty(ctx, "uploads")
	if err != nil {
		return err
	}
	owned := map[string]bool{}
	for _, s := range sessions {
		owned[s] = true
	}
	m := &marker{c: c, m: &markResult{blobs: map[digest.Digest]blobInfo{}}}
	if err := m.listBlobs(ctx); err != nil {
		return err
	}
	for _, b := range m.m.blobs {
		owned[strings.TrimPrefix(b.data, "data/")] = true
	}
	var orphans []string
	for _, id := range ids {
		if !owned[id] && validDataID(id) {
			orphans = append(orphans, id)
		}
	}
	return c.forEach(ctx, orphans, func(ctx context.Context, id string) error {
		info, err := c.st.d.Stat(ctx, dataPath(id))
		if errors.Is(err, errdefs.ErrNotFound) || (err == nil && !info.ModTime.Before(c.cutoff)) {
			return nil
		} else if err != nil {
			return err
		}
		if err := ignoreNotFound(c.st.d.Delete(ctx, dataPath(id))); err != nil {
			return err
		}
		c.count(func(rep *GCReport) { rep.DeletedData++ })
		return nil
	})
}
