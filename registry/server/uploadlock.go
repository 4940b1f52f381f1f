package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// Upload locks, beside the layout of doc.go:
//
//	uploadlocks/<id>/<generation>   a lease (lease.go) of the request
//	                                writing upload <id>
//
// A chunk is appended to data/<id> and then the session's offset and hash
// state are saved: two requests doing that at once for one upload (a
// client retrying on another replica while the first attempt still
// writes) could leave a hash state that does not describe the data, and
// the digest check at the end would vouch for bytes it never saw. So
// PATCH, PUT and DELETE of an upload hold its lease, renewed while held; a
// second writer is answered 416 and, as the spec has it, asks where the
// upload stands and resumes. A lease whose writer died expires after
// uploadLockTTL. The directory goes when the upload does.
const uploadLockTTL = time.Minute

func uploadLockDir(id string) string { return "uploadlocks/" + id }

// lockUpload makes the caller upload id's only writer until unlock. Over a
// driver without conditional creates there is no lock.
func (s *Server) lockUpload(ctx context.Context, id string) (unlock func(), err error) {
	c, ok := s.st.d.(storage.Creator)
	if !ok {
		return func() {}, nil
	}
	l, err := takeLease(ctx, s.st, c, uploadLockDir(id), newID(), uploadLockTTL)
	if errors.Is(err, errLeaseHeld) {
		return nil, errf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "upload %s is being written by another request", id)
	} else if err != nil {
		return nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	bg := context.WithoutCancel(ctx)
	go func() {
		defer close(done)
		t := time.NewTicker(uploadLockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := l.renew(bg); err != nil {
					s.log.Warn("renew upload lock", "upload", id, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		if err := l.release(bg); err != nil {
			s.log.Warn("release upload lock", "upload", id, "err", err)
		}
		if err := dropFinishedUploadLock(bg, s.st, id); err != nil {
			s.log.Warn("remove upload lock", "upload", id, "err", err)
		}
	}, nil
}

// dropFinishedUploadLock removes the lock directory of an upload that no
// longer exists (finished, cancelled or purged): no writer can want it.
func dropFinishedUploadLock(ctx context.Context, st store, id string) error {
	if _, err := st.d.Get(ctx, uploadPath(id)); !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return ignoreNotFound(st.d.Delete(ctx, uploadLockDir(id)))
}

// lockedUpload locks the upload of rt and loads its session under the lock.
// When the lock is held elsewhere it returns the session as last saved
// with the error, for the 416's Range header.
func (s *Server) lockedUpload(ctx context.Context, rt route) (*uploadState, func(), error) {
	// Unknown uploads are answered without creating a lock for them.
	pre, err := s.loadUpload(ctx, rt)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := s.lockUpload(ctx, rt.ref)
	if err != nil {
		return pre, nil, err
	}
	st, err := s.loadUpload(ctx, rt)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, unlock, nil
}
