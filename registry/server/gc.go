package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// GCOptions configure a collection.
type GCOptions struct {
	// DryRun marks and reports what would be deleted, writing nothing.
	DryRun bool
	// Grace protects everything written more recently than this: blobs
	// of pushes whose manifest has not arrived yet, fresh revisions.
	// Zero means DefaultGCGrace.
	Grace time.Duration
	// DeleteUntagged also collects manifests no tag reaches (directly, as
	// a child of a tagged index, or as a kept referrer).
	DeleteUntagged bool
	// DeleteReferrers collects referrers of live manifests too when they
	// are untagged; by default a live subject keeps its referrers.
	DeleteReferrers bool
	// Log receives progress; nil discards.
	Log *slog.Logger
}

// DefaultGCGrace is the grace period when none is configured.
const DefaultGCGrace = time.Hour

// GCReport is what a collection found and did.
type GCReport struct {
	Run              string        `json:"run"`
	DryRun           bool          `json:"dryRun"`
	Repositories     int           `json:"repositories"`
	Manifests        int           `json:"manifests"` // revisions over all repositories
	Blobs            int           `json:"blobs"`
	LiveBlobs        int           `json:"liveBlobs"`
	DeletedBlobs     int           `json:"deletedBlobs"`
	DeletedBytes     int64         `json:"deletedBytes"`
	DeletedManifests int           `json:"deletedManifests"`
	DeletedData      int           `json:"deletedData"` // orphaned upload data
	Kept             int           `json:"kept"`        // candidates a concurrent request referenced
	Candidates       []string      `json:"candidates,omitempty"`
	Mark             time.Duration `json:"markNs"`
	Sweep            time.Duration `json:"sweepNs"`
	Total            time.Duration `json:"totalNs"`
}

// collector is one collection over a storage.
type collector struct {
	st     store
	opts   GCOptions
	log    *slog.Logger
	run    string
	cutoff time.Time

	mu  sync.Mutex // guards rep during the sweep
	rep *GCReport
}

// Collect runs a garbage collection while the registry keeps serving: it
// marks what tagged manifests (and, by policy, untagged ones and referrers)
// reach, plus everything younger than the grace period, and deletes the
// rest. Only one collection runs at a time over a storage (gc/lock); one
// that was interrupted is cleaned up by the next.
func Collect(ctx context.Context, d storage.Driver, opts GCOptions) (*GCReport, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGCGrace
	}
	c := &collector{st: store{d: d}, opts: opts, log: opts.Log, run: newID()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	c.cutoff = start.Add(-opts.Grace)
	c.rep = &GCReport{Run: c.run, DryRun: opts.DryRun}
	if opts.DryRun {
		m, err := c.mark(ctx)
		if err != nil {
			return nil, err
		}
		c.rep.Mark = time.Since(start)
		c.report(m, m.candidates(c.cutoff))
		c.rep.Total = time.Since(start)
		return c.rep, nil
	}
	lockCtx, release, err := acquireGCLock(ctx, c.st, c.run, c.log)
	if err != nil {
		return nil, err
	}
	defer release()
	err = c.collect(lockCtx, start)
	c.rep.Total = time.Since(start)
	fin := GCState{Run: c.run, Started: start.UTC(), Finished: time.Now().UTC(), Report: c.rep}
	if err != nil {
		fin.Error = err.Error()
	}
	// Written with the caller's context: the lock's may be the one that
	// ended, and writers must see the collection is over.
	if perr := c.st.putState(context.WithoutCancel(ctx), fin); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return c.rep, fmt.Errorf("garbage collection %s: %w", c.run, err)
	}
	return c.rep, nil
}

func (c *collector) collect(ctx context.Context, start time.Time) error {
	// A previous collection that died left markers; we hold the lock, so
	// it is not coming back.
	if err := c.clearMarkers(ctx); err != nil {
		return err
	}
	if err := c.st.putState(ctx, GCState{Run: c.run, Active: true, Started: start.UTC()}); err != nil {
		return err
	}
	first, err := c.mark(ctx)
	if err != nil {
		return err
	}
	cands := first.candidates(c.cutoff)
	if err := c.doom(ctx, cands); err != nil {
		return err
	}
	// The second mark sees every reference committed before a request
	// could read our doom markers; what it finds live is spared.
	second, err := c.mark(ctx)
	if err != nil {
		return err
	}
	c.rep.Mark = time.Since(start)
	still := second.candidates(c.cutoff)
	kept := cands.minus(still)
	c.rep.Kept += kept.len()
	if err := c.undoom(ctx, kept); err != nil {
		return err
	}
	c.report(second, cands.intersect(still))
	sweepStart := time.Now()
	if err := c.sweep(ctx, second, cands.intersect(still)); err != nil {
		return err
	}
	if err := c.sweepData(ctx); err != nil {
		return err
	}
	c.rep.Sweep = time.Since(sweepStart)
	return c.clearMarkers(ctx)
}

func (c *collector) report(m *markResult, cands candidateSet) {
	c.rep.Repositories = m.repos
	c.rep.Manifests = len(m.revisions)
	c.rep.Blobs = len(m.blobs)
	c.rep.LiveBlobs = len(m.blobs) - len(cands.blobs)
	if c.opts.DryRun {
		for _, r := range cands.revs {
			c.rep.Candidates = append(c.rep.Candidates, r.repo+"@"+r.d.String())
			c.rep.DeletedManifests++
		}
		for _, d := range cands.blobs {
			c.rep.Candidates = append(c.rep.Candidates, d.String())
			c.rep.DeletedBlobs++
			c.rep.DeletedBytes += m.blobs[d].size
		}
	}
}

// clearMarkers removes doom and rescue markers.
func (c *collector) clearMarkers(ctx context.Context) error {
	for _, p := range []string{gcDoomedDir, gcRescuedDir} {
		if err := c.st.d.Delete(ctx, p); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}
