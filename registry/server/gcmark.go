package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"berth/errdefs"
)

// markWorkers bounds the storage requests a mark has in flight.
const markWorkers = 16

type blobInfo struct {
	data  string
	size  int64
	mtime time.Time
}

type revInfo struct {
	repo    string
	d       digest.Digest
	subject digest.Digest
	mtime   time.Time
	live    bool
}

// markResult is one pass over the registry.
type markResult struct {
	repos     int
	blobs     map[digest.Digest]blobInfo
	live      map[digest.Digest]bool
	revisions []revInfo
	layers    map[digest.Digest][]string // repositories with a _layers link
}

// refs is what a manifest names: blobs (config, layers) and child manifests.
type refs struct {
	blobs    []digest.Digest
	children []digest.Digest
}

// marker walks the registry once; manifests are parsed once per digest.
type marker struct {
	c  *collector
	mu sync.Mutex
	mf map[digest.Digest]refs
	m  *markResult
}

func (c *collector) mark(ctx context.Context) (*markResult, error) {
	mk := &marker{c: c, mf: map[digest.Digest]refs{}, m: &markResult{
		blobs: map[digest.Digest]blobInfo{}, live: map[digest.Digest]bool{}, layers: map[digest.Digest][]string{},
	}}
	repos, err := c.st.repositories(ctx)
	if err != nil {
		return nil, err
	}
	mk.m.repos = len(repos)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(markWorkers)
	for _, name := range repos {
		g.Go(func() error { return mk.markRepo(gctx, name) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := mk.listBlobs(ctx); err != nil {
		return nil, err
	}
	return mk.m, nil
}

// markRepo finds the repository's live revisions and records the blobs they
// and its young layer links reach.
func (mk *marker) markRepo(ctx context.Context, name string) error {
	revs, err := mk.revisions(ctx, name)
	if err != nil {
		return err
	}
	tagged, err := mk.tagged(ctx, name)
	if err != nil {
		return err
	}
	young, err := mk.youngLayers(ctx, name)
	if err != nil {
		return err
	}
	byDigest := map[digest.Digest]*revInfo{}
	bySubject := map[digest.Digest][]digest.Digest{}
	var queue []digest.Digest
	for i := range revs {
		r := &revs[i]
		byDigest[r.d] = r
		if r.subject != "" {
			bySubject[r.subject] = append(bySubject[r.subject], r.d)
		}
		if tagged[r.d] || !r.mtime.Before(mk.c.cutoff) || !mk.c.opts.DeleteUntagged {
			queue = append(queue, r.d)
		}
	}
	var liveBlobs []digest.Digest
	seen := map[digest.Digest]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		if r := byDigest[d]; r != nil {
			r.live = true
		}
		rf, err := mk.manifest(ctx, d)
		if err != nil {
			return err
		}
		liveBlobs = append(liveBlobs, d)
		liveBlobs = append(liveBlobs, rf.blobs...)
		queue = append(queue, rf.children...)
		if !mk.c.opts.DeleteReferrers {
			queue = append(queue, bySubject[d]...)
		}
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	for _, d := range append(liveBlobs, young...) {
		mk.m.live[d] = true
	}
	for _, r := range revs {
		mk.m.revisions = append(mk.m.revisions, r)
	}
	return nil
}

// revisions lists a repository's manifest revisions with their age and
// subject.
func (mk *marker) revisions(ctx context.Context, name string) ([]revInfo, error) {
	var out []revInfo
	err := mk.eachDigest(ctx, repoPath(name)+"/_manifests/revisions", func(d digest.Digest, p string) error {
		info, err := mk.c.st.d.Stat(ctx, p)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		var rev revision
		if err := mk.c.st.getJSON(ctx, p, &rev); errors.Is(err, errdefs.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		r := revInfo{repo: name, d: d, mtime: info.ModTime}
		if s, err := digest.Parse(rev.Subject); err == nil {
			r.subject = s
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// eachDigest calls fn for every <alg>/<hex> object under prefix.
func (mk *marker) eachDigest(ctx context.Context, prefix string, fn func(d digest.Digest, p string) error) error {
	algs, err := mk.c.st.listOrEmpty(ctx, prefix)
	if err != nil {
		return err
	}
	for _, alg := range algs {
		hexes, err := mk.c.st.listOrEmpty(ctx, prefix+"/"+alg)
		if err != nil {
			return err
		}
		for _, h := range hexes {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg), h)
			if d.Validate() != nil {
				continue
			}
			if err := fn(d, prefix+"/"+alg+"/"+h); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

func (mk *marker) tagged(ctx context.Context, name string) (map[digest.Digest]bool, error) {
	tags, err := mk.c.st.listOrEmpty(ctx, tagsPath(name))
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, t := range tags {
		b, err := mk.c.st.d.Get(ctx, tagPath(name, t))
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if d, err := digest.Parse(strings.TrimSpace(string(b))); err == nil {
			out[d] = true
		}
	}
	return out, nil
}

// youngLayers returns the blobs the repository linked within the grace
// period (a push whose manifest is yet to come), and records every link.
func (mk *marker) youngLayers(ctx context.Context, name string) ([]digest.Digest, error) {
	var young, all []digest.Digest
	err := mk.eachDigest(ctx, repoPath(name)+"/_layers", func(d digest.Digest, p string) error {
		all = append(all, d)
		info, err := mk.c.st.d.Stat(ctx, p)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if !info.ModTime.Before(mk.c.cutoff) {
			young = append(young, d)
		}
		return nil
	})
	mk.mu.Lock()
	for _, d := range all {
		mk.m.layers[d] = append(mk.m.layers[d], name)
	}
	mk.mu.Unlock()
	return young, err
}

// manifest returns what the manifest blob d references. A manifest whose
// bytes are missing or unparsable references nothing known; its revision
// still keeps its own digest alive.
func (mk *marker) manifest(ctx context.Context, d digest.Digest) (refs, error) {
	mk.mu.Lock()
	rf, ok := mk.mf[d]
	mk.mu.Unlock()
	if ok {
		return rf, nil
	}
	body, err := mk.c.st.readSmallBlob(ctx, d)
	if errors.Is(err, errdefs.ErrNotFound) {
		mk.c.log.Warn("gc: manifest bytes missing", "digest", d)
		return refs{}, nil
	} else if err != nil {
		return refs{}, err
	}
	rf = manifestRefs(body)
	mk.mu.Lock()
	mk.mf[d] = rf
	mk.mu.Unlock()
	return rf, nil
}

func manifestRefs(body []byte) refs {
	var m manifest
	var rf refs
	if json.Unmarshal(body, &m) != nil {
		return rf
	}
	if m.Config != nil && m.Config.Digest.Validate() == nil {
		rf.blobs = append(rf.blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if l.Digest.Validate() == nil {
			rf.blobs = append(rf.blobs, l.Digest)
		}
	}
	for _, c := range m.Manifests {
		if c.Digest.Validate() == nil {
			rf.children = append(rf.children, c.Digest)
		}
	}
	return rf
}

// listBlobs records every blob link with its data, size and age.
func (mk *marker) listBlobs(ctx context.Context) error {
	type item struct {
		d digest.Digest
		p string
	}
	var items []item
	err := mk.eachDigest(ctx, "blobs", func(d digest.Digest, p string) error {
		items = append(items, item{d, p + "/link"})
		return nil
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(markWorkers)
	for _, it := range items {
		g.Go(func() error {
			info, err := mk.c.st.d.Stat(gctx, it.p)
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			var l blobLink
			if err := mk.c.st.getJSON(gctx, it.p, &l); errors.Is(err, errdefs.ErrNotFound) {
				return nil
			} else if err != nil {
				// An unreadable link names no data: the blob is lost either way.
				mk.c.log.Warn("gc: unreadable blob link", "digest", it.d, "err", err)
			}
			mk.mu.Lock()
			mk.m.blobs[it.d] = blobInfo{data: l.Data, size: l.Size, mtime: info.ModTime}
			mk.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// candidateSet is what a mark found deletable.
type candidateSet struct {
	revs  []revInfo
	blobs []digest.Digest
}

func (s candidateSet) len() int { return len(s.revs) + len(s.blobs) }

func revKey(r revInfo) string { return revisionPath(r.repo, r.d) }

// candidates are the revisions not live and old, and the blobs nothing live
// references whose link is older than the cutoff.
func (m *markResult) candidates(cutoff time.Time) candidateSet {
	var out candidateSet
	for _, r := range m.revisions {
		if !r.live && r.mtime.Before(cutoff) {
			out.revs = append(out.revs, r)
		}
	}
	for d, b := range m.blobs {
		if !m.live[d] && b.mtime.Before(cutoff) {
			out.blobs = append(out.blobs, d)
		}
	}
	return out
}

func (s candidateSet) filter(keep func(key string) bool) candidateSet {
	var out candidateSet
	for _, r := range s.revs {
		if keep(revKey(r)) {
			out.revs = append(out.revs, r)
		}
	}
	for _, d := range s.blobs {
		if keep(blobLinkPath(d)) {
			out.blobs = append(out.blobs, d)
		}
	}
	return out
}

func (s candidateSet) keys() map[string]bool {
	k := map[string]bool{}
	for _, r := range s.revs {
		k[revKey(r)] = true
	}
	for _, d := range s.blobs {
		k[blobLinkPath(d)] = true
	}
	return k
}

func (s candidateSet) minus(o candidateSet) candidateSet {
	ok := o.keys()
	return s.filter(func(k string) bool { return !ok[k] })
}

func (s candidateSet) intersect(o candidateSet) candidateSet {
	ok := o.keys()
	return s.filter(func(k string) bool { return ok[k] })
}
