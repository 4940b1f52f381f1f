package server

import (
	"context"
	"encoding/json"
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
// the lease is lost; release ends it and removes the lease.
func acquireGCLock(ctx context.Context, st store, owner string, settle time.Duration, log *slog.Logger) (context.Context, func(), error) {
	if err := takeGCLock(ctx, st, owner, settle); err != nil {
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

// takeGCLock writes the lease. Over a storage.Creator (every bundled
// driver) the lease is created only where none exists, so of collectors on
// several replicas starting together exactly one gets it, without waiting.
// An expired lease (its collector died) is deleted and created again; two
// collectors doing that at once may both succeed when one's read and delete
// straddle the other's create, so a takeover also waits settle and reads
// the lease back, as without a Creator, where the lease is simply written:
// the last writer wins and the others see it.
func takeGCLock(ctx context.Context, st store, owner string, settle time.Duration) error {
	lease, err := json.Marshal(gcLock{Owner: owner, Expires: time.Now().Add(gcLockTTL).UTC()})
	if err != nil {
		return err
	}
	c, exclusive := st.d.(storage.Creator)
	if exclusive {
		err := c.Create(ctx, gcLockPath, lease)
		if !errors.Is(err, errdefs.ErrAlreadyExists) {
			return err
		}
	}
	l, err := readLock(ctx, st)
	switch {
	case err != nil:
		return err
	case l.Owner == owner:
		return nil // a create retried after its response was lost
	case l.Owner != "" && time.Now().Before(l.Expires):
		return fmt.Errorf("garbage collection %s holds the lock until %s: %w", l.Owner, l.Expires.Format(time.RFC3339), errdefs.ErrConflict)
	}
	if exclusive {
		if err := st.d.Delete(ctx, gcLockPath); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		if err := c.Create(ctx, gcLockPath, lease); errors.Is(err, errdefs.ErrAlreadyExists) {
			return fmt.Errorf("garbage collection lock taken over by another collector: %w", errdefs.ErrConflict)
		} else if err != nil {
			return err
		}
	} else if err := st.d.Put(ctx, gcLockPath, lease); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settle):
	}
	return checkLockOwned(ctx, st, owner)
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
