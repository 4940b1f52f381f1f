package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// Leases over a storage.Creator, beside the layout of doc.go:
//
//	<dir>/<generation>   {"owner","expires"}: generation is a 20-digit
//	                     decimal, so names sort by number
//
// The lease belongs to the highest generation while it has not expired
// (a released one has expired). Taking it creates the next generation
// exclusively, so of the processes that saw the same generation expire
// exactly one succeeds, however late the others act on what they read;
// a creator then lists the directory and keeps the lease only if its
// generation is still the highest, which also defeats a stale creator
// whose generation the holder's clean-up had deleted. Nothing ever writes
// another holder's file: renewing rewrites one's own generation, releasing
// marks it expired.
type leaseRecord struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// heldLease is a lease this process holds.
type heldLease struct {
	st    store
	dir   string
	gen   uint64
	owner string
	ttl   time.Duration
}

// errLeaseHeld wraps the kind a caller maps to "busy".
var errLeaseHeld = errdefs.ErrConflict

func genName(gen uint64) string { return fmt.Sprintf("%020d", gen) }

// topLease reads the highest generation of dir (0 when there is none).
func topLease(ctx context.Context, st store, dir string) (uint64, leaseRecord, error) {
	names, err := st.listOrEmpty(ctx, dir)
	if err != nil {
		return 0, leaseRecord{}, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		gen, err := strconv.ParseUint(names[i], 10, 64)
		if err != nil {
			continue // not a generation
		}
		var rec leaseRecord
		err = st.getJSON(ctx, dir+"/"+names[i], &rec)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // cleaned meanwhile: an older one
		}
		return gen, rec, err
	}
	return 0, leaseRecord{}, nil
}

// takeLease makes owner the holder of dir's lease for ttl, or returns an
// error of kind ErrConflict naming the holder.
func takeLease(ctx context.Context, st store, c storage.Creator, dir, owner string, ttl time.Duration) (*heldLease, error) {
	top, rec, err := topLease(ctx, st, dir)
	if err != nil {
		return nil, err
	}
	if top > 0 && rec.Owner == owner {
		return &heldLease{st: st, dir: dir, gen: top, owner: owner, ttl: ttl}, nil // a create retried after its response was lost
	}
	if top > 0 && time.Now().Before(rec.Expires) {
		return nil, fmt.Errorf("%s is held by %s until %s: %w", dir, rec.Owner, rec.Expires.Format(time.RFC3339), errLeaseHeld)
	}
	l := &heldLease{st: st, dir: dir, gen: top + 1, owner: owner, ttl: ttl}
	b, err := json.Marshal(leaseRecord{Owner: owner, Expires: time.Now().Add(ttl).UTC()})
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, l.path(), b); errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil, fmt.Errorf("%s was taken by another process: %w", dir, errLeaseHeld)
	} else if err != nil {
		return nil, err
	}
	if err := l.check(ctx); err != nil {
		_ = ignoreNotFound(st.d.Delete(context.WithoutCancel(ctx), l.path()))
		return nil, err
	}
	l.dropOlder(ctx)
	return l, nil
}

func (l *heldLease) path() string { return l.dir + "/" + genName(l.gen) }

// check fails with ErrConflict when a later generation exists.
func (l *heldLease) check(ctx context.Context) error {
	top, rec, err := topLease(ctx, l.st, l.dir)
	if err != nil {
		return err
	}
	if top != l.gen {
		return fmt.Errorf("%s was taken over by %s: %w", l.dir, rec.Owner, errLeaseHeld)
	}
	return nil
}

// dropOlder deletes the generations below the held one; they only show
// that the lease changed hands. Best effort: leftovers are harmless.
func (l *heldLease) dropOlder(ctx context.Context) {
	names, err := l.st.listOrEmpty(ctx, l.dir)
	if err != nil {
		return
	}
	for _, name := range names {
		if gen, err := strconv.ParseUint(name, 10, 64); err == nil && gen < l.gen {
			_ = ignoreNotFound(l.st.d.Delete(ctx, l.dir+"/"+name))
		}
	}
}

// renew extends the lease, or fails with ErrConflict if it was taken over
// (this process stalled past its expiry).
func (l *heldLease) renew(ctx context.Context) error {
	if err := l.check(ctx); err != nil {
		return err
	}
	return l.st.putJSON(ctx, l.path(), leaseRecord{Owner: l.owner, Expires: time.Now().Add(l.ttl).UTC()})
}

// release marks the lease expired. The file stays: the next holder's
// generation must be higher than every one a stale reader may have seen.
func (l *heldLease) release(ctx context.Context) error {
	if err := l.check(ctx); err != nil {
		return nil // someone else's now
	}
	return l.st.putJSON(ctx, l.path(), leaseRecord{Owner: l.owner})
}
