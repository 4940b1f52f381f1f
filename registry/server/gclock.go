package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// gcLockTTL is how long a collector's lease lasts without renewal; it is
// renewed every third of that.
const gcLockTTL = 2 * time.Minute

type gcLock struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// acquireGCLock takes the collection lease. The returned context ends if
// the lease is lost; release ends it and gives the lease up.
func acquireGCLock(ctx context.Context, st store, owner string, settle time.Duration, log *slog.Logger) (context.Context, func(), error) {
	renew, giveUp, err := takeGCLock(ctx, st, owner, settle)
	if err != nil {
		return nil, nil, err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		renewGCLock(lctx, renew, cancel, log)
	}()
	release := func() {
		cancel(nil)
		<-done
		if err := giveUp(context.WithoutCancel(ctx)); err != nil {
			log.Warn("release gc lock", "err", err)
		}
	}
	return lctx, release, nil
}

func readLock(ctx context.Context, st store) (gcLock, error) {
	var l gcLock
	err := st.getJSON(ctx, gcLockPath, &l)
	if errors.Is(err, errdefs.ErrNotFound) {
		return gcLock{}, nil
	}
	return l, err
}

// takeGCLock takes the lease and returns how to renew and release it.
// Over a storage.Creator (every bundled driver) it is a generation lease
// (lease.go): of collectors on several replicas starting together, or
// taking over a dead collector's expired lease, exactly one gets it,
// without waiting. Other drivers have the lease simply written: the last
// writer wins, and a collector waits settle and reads it back.
func takeGCLock(ctx context.Context, st store, owner string, settle time.Duration) (renew, release func(context.Context) error, err error) {
	if c, ok := st.d.(storage.Creator); ok {
		l, err := takeLease(ctx, st, c, gcLeaseDir, owner, gcLockTTL)
		if err != nil {
			return nil, nil, fmt.Errorf("garbage collection lock: %w", err)
		}
		return l.renew, l.release, nil
	}
	l, err := readLock(ctx, st)
	switch {
	case err != nil:
		return nil, nil, err
	case l.Owner != owner && l.Owner != "" && time.Now().Before(l.Expires):
		return nil, nil, fmt.Errorf("garbage collection %s holds the lock until %s: %w", l.Owner, l.Expires.Format(time.RFC3339), errdefs.ErrConflict)
	}
	if err := st.putJSON(ctx, gcLockPath, gcLock{Owner: owner, Expires: time.Now().Add(gcLockTTL).UTC()}); err != nil {
		return nil, nil, err
	}
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-time.After(settle):
	}
	if err := checkLockOwned(ctx, st, owner); err != nil {
		return nil, nil, err
	}
	renew = func(ctx context.Context) error {
		if err := checkLockOwned(ctx, st, owner); err != nil {
			return err
		}
		return st.putJSON(ctx, gcLockPath, gcLock{Owner: owner, Expires: time.Now().Add(gcLockTTL).UTC()})
	}
	release = func(ctx context.Context) error {
		if checkLockOwned(ctx, st, owner) != nil {
			return nil
		}
		return ignoreNotFound(st.d.Delete(ctx, gcLockPath))
	}
	return renew, release, nil
}

func checkLockOwned(ctx context.Context, st store, owner string) error {
	l, err := readLock(ctx, st)
	if err != nil {
		return err
	}
	if l.Owner != owner {
		return fmt.Errorf("garbage collection lock taken by %s: %w", l.Owner, errdefs.ErrConflict)
	}
	return nil
}

// renewGCLock extends the lease until ctx ends; a lease found taken over or
// unrenewable ends the collection.
func renewGCLock(ctx context.Context, renew func(context.Context) error, cancel context.CancelCauseFunc, log *slog.Logger) {
	t := time.NewTicker(gcLockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := renew(ctx); err != nil {
			log.Warn("renew gc lock", "err", err)
			cancel(fmt.Errorf("renew gc lock: %w", err))
			return
		}
	}
}
