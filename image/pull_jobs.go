package image

import (
	"context"
	"sync"

	"berth/remote"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
)

// distribution is the state pulls and pushes share across requests: the
// registry client, the daemon-wide download slots, the layer jobs in
// flight and the chain IDs that running pulls depend on.
type distribution struct {
	remote    *remote.Client
	downloads chan struct{} // one token per running layer download
	uploads   int

	// configs shares config downloads between concurrent pulls.
	configs singleflight.Group

	mu    sync.Mutex
	jobs  map[digest.Digest]*layerJob // by chain ID, until recorded
	pins  map[digest.Digest]int       // chain ID -> pulls depending on it
	blobs map[digest.Digest]chan struct{}
}

func newDistribution(rc *remote.Client, maxDownloads, maxUploads int) *distribution {
	if maxDownloads <= 0 {
		maxDownloads = 3
	}
	if maxUploads <= 0 {
		maxUploads = 5
	}
	return &distribution{
		remote: rc, downloads: make(chan struct{}, maxDownloads), uploads: maxUploads,
		jobs: map[digest.Digest]*layerJob{}, pins: map[digest.Digest]int{}, blobs: map[digest.Digest]chan struct{}{},
	}
}

// pinned reports whether a running pull depends on chain, so that layer
// GC leaves it alone although no image uses it yet. gcLayers asks while
// holding layerMu exclusively; pulls pin while holding it shared, so a
// pull's "this layer exists" and GC's "nobody needs it" cannot interleave.
func (d *distribution) pinned(chain digest.Digest) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pins[chain] > 0
}

func (d *distribution) pin(chains []digest.Digest) (unpin func()) {
	d.mu.Lock()
	for _, c := range chains {
		d.pins[c]++
	}
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, c := range chains {
				if d.pins[c]--; d.pins[c] <= 0 {
					delete(d.pins, c)
				}
			}
		})
	}
}

// lockBlob serialises the transfers of one compressed blob (two layers of
// different images may share it): the content store allows one writer per
// ingest. The returned func releases it.
func (d *distribution) lockBlob(ctx context.Context, dgst digest.Digest) (func(), error) {
	for {
		d.mu.Lock()
		busy, ok := d.blobs[dgst]
		if !ok {
			ch := make(chan struct{})
			d.blobs[dgst] = ch
			d.mu.Unlock()
			return func() {
				d.mu.Lock()
				delete(d.blobs, dgst)
				d.mu.Unlock()
				close(ch)
			}, nil
		}
		d.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// layerSpec is what a pull knows of one layer it needs.
type layerSpec struct {
	desc   ocispec.Descriptor // the blob as the manifest lists it
	diffID digest.Digest
	chain  digest.Digest
	parent digest.Digest // chain ID below, "" for the base layer
}

// layerJob makes one layer exist: download, verify, unpack, commit and
// record it. Concurrent pulls that need the same chain ID share one job
// and each watches its progress; the job runs until it is done or every
// watcher has left.
type layerJob struct {
	s      *Service
	spec   layerSpec
	sess   *remote.Session
	ref    reference.Named
	parent *layerJob // nil when the parent layer already exists
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	// slotted is closed once the job holds a download slot or needs none:
	// a child waits for it, so slots go to layers in order (see download).
	slotted     chan struct{}
	slottedOnce sync.Once
	times       layerTimes // written by the job's goroutine only

	mu       sync.Mutex
	watchers map[int]func(Progress)
	next     int
}

// layerJob returns the running job for spec.chain, or starts one. The
// caller watches it with watch and must call the returned detach.
func (d *distribution) layerJob(ctx context.Context, s *Service, spec layerSpec, sess *remote.Session, ref reference.Named, parent *layerJob) *layerJob {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j, ok := d.jobs[spec.chain]; ok {
		return j
	}
	// The job outlives the request that started it when others watch it.
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &layerJob{s: s, spec: spec, sess: sess, ref: ref, parent: parent, cancel: cancel,
		done: make(chan struct{}), slotted: make(chan struct{}), watchers: map[int]func(Progress){}}
	d.jobs[spec.chain] = j
	go func() {
		defer cancel()
		j.err = j.run(jctx)
		d.mu.Lock()
		delete(d.jobs, spec.chain)
		d.mu.Unlock()
		close(j.done)
	}()
	return j
}

// watch adds fn to the job's progress watchers until detach is called; the
// last watcher to leave an unfinished job cancels it.
func (j *layerJob) watch(fn func(Progress)) (detach func()) {
	j.mu.Lock()
	id := j.next
	j.next++
	j.watchers[id] = fn
	j.mu.Unlock()
	return func() {
		j.mu.Lock()
		delete(j.watchers, id)
		last := len(j.watchers) == 0
		j.mu.Unlock()
		if last {
			select {
			case <-j.done:
			default:
				j.cancel()
			}
		}
	}
}

func (j *layerJob) emit(p Progress) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, fn := range j.watchers {
		fn(p)
	}
}

// wait blocks until the job ends or ctx does.
func (j *layerJob) wait(ctx context.Context) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *layerJob) markSlotted() { j.slottedOnce.Do(func() { close(j.slotted) }) }

// awaitParentSlot waits until the parent job holds a download slot, or
// needs none, or has ended.
func (j *layerJob) awaitParentSlot(ctx context.Context) error {
	if j.parent == nil {
		return nil
	}
	select {
	case <-j.parent.slotted:
	case <-j.parent.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
