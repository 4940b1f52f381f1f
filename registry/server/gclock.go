package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"berth/errdefs"
)

// gcLockTTL is how long a collector's lease lasts without renewal; it is
// renewed every third of that.
const gcLockTTL = 2 * time.Minute

type gcLock struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// acquireGCLock takes the collection lease. Storage offers no
// compare-and-swap, so the lease is written, left to settle, and read back:
// of two collectors starting together the last writer wins and the other
// sees it. The returned context ends if the lease is lost; release ends it
// and removes the lease.
func acquireGCLock(ctx context.Context, st store, owner string, settle time.Duration, log *slog.Logger) (context.Context, func(), error) {
	if err := checkLockFree(ctx, st, owner); err != nil {
		return nil, nil, err
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
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		renewGCLock(lctx, st, owner, cancel, log)
	}()
	release := func() {
		cancel(nil)
		<-done
		if err := checkLockOwned(context.WithoutCancel(ctx), st, owner); err == nil {
			if err := st.d.Delete(context.WithoutCancel(ctx), gcLockPath); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				log.Warn("release gc lock", "err", err)
			}
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

func checkLockFree(ctx context.Context, st store, owner string) error {
	l, err := readLock(ctx, st)
	if err != nil {
		return err
	}
	if l.Owner != "" && l.Owner != owner && time.Now().Before(l.Expires) {
		return fmt.Errorf("garbage collection %s holds the lock until %s: %w", l.Owner, l.Expires.Format(time.RFC3339), errdefs.ErrConflict)
	}
	return nil
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
func renewGCLock(ctx context.Context, st store, owner string, cancel context.CancelCauseFunc, log *slog.Logger) {
	t := time.NewTicker(gcLockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := checkLockOwned(ctx, st, owner); err != nil {
			cancel(err)
			return
		}
		if err := st.putJSON(ctx, gcLockPath, gcLock{Owner: owner, Expires: time.Now().Add(gcLockTTL).UTC()}); err != nil {
			log.Warn("renew gc lock", "err", err)
			cancel(fmt.Errorf("renew gc lock: %w", err))
			return
		}
	}
}
