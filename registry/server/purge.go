package server

import (
	"context"
	"errors"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// PurgeUploads deletes upload sessions started before cutoff, with their
// bytes, and returns how many it removed. Clients that stall longer than the
// registry's upload TTL must start over.
func PurgeUploads(ctx context.Context, d storage.Driver, cutoff time.Time) (int, error) {
	st := store{d: d}
	ids, err := st.listOrEmpty(ctx, "uploads")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		var u uploadState
		err := st.getJSON(ctx, uploadPath(id), &u)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // finished meanwhile
		} else if err != nil {
			return n, err
		}
		if u.Started.After(cutoff) {
			continue
		}
		if err := st.dropUpload(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, purgeUploadLocks(ctx, st)
}

// purgeUploadLocks deletes expired upload locks: a process died holding them.
func purgeUploadLocks(ctx context.Context, st store) error {
	ids, err := st.listOrEmpty(ctx, "uploadlocks")
	if err != nil {
		return err
	}
	for _, id := range ids {
		var l uploadLock
		if err := st.getJSON(ctx, uploadLockPath(id), &l); err != nil || time.Now().Before(l.Expires) {
			continue // released meanwhile, unreadable, or held
		}
		if err := ignoreNotFound(st.d.Delete(ctx, uploadLockPath(id))); err != nil {
			return err
		}
	}
	return nil
}
