package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// gcLockTTL is how long a collector's lease lasts without renewal; it is
// renewed every third of that.
const gcLockTTL = 2 * time.Minute

// acquireGCLock takes the collection lease. The returned context ends if
// the lease is lost; release ends it and gives the lease up.
func acquireGCLock(ctx context.Context, st store, owner string, log *slog.Logger) (context.Context, func(), error) {
	renew, giveUp, err := takeGCLock(ctx, st, owner)
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

// takeGCLock takes the lease (lease.go) and returns how to renew and
// release it: of collectors on several replicas starting together, or
// taking over a dead collector's expired lease, exactly one gets it,
// without waiting. A storage without conditional creates cannot be
// collected safely by several processes, so it cannot be collected.
func takeGCLock(ctx context.Context, st store, owner string) (renew, release func(context.Context) error, err error) {
	c, ok := st.d.(storage.Creator)
	if !ok {
		return nil, nil, fmt.Errorf("garbage collection needs a storage driver with conditional creates: %w", errdefs.ErrFailedPrecondition)
	}
	l, err := takeLease(ctx, st, c, gcLeaseDir, owner, gcLockTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("garbage collection lock: %w", err)
	}
	return l.renew, l.release, nil
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
