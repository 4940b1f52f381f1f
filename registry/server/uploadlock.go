package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

// Upload locks, beside the layout of doc.go:
//
//	uploadlocks/<id>   {"owner","expires"}: the request writing upload <id>
//
// A chunk is appended to data/<id> and then the session's offset and hash
// state are saved: two requests doing that at once for one upload (a
// client retrying on another replica while the first attempt still
// writes) could leave a hash state that does not describe the data, and
// the digest check at the end would vouch for bytes it never saw. So
// PATCH, PUT and DELETE of an upload hold its lock, created exclusively
// (storage.Creator) and renewed while held; a second writer is answered
// 416 and, as the spec has it, asks where the upload stands and resumes.
// A lock whose writer died expires after uploadLockTTL.
const uploadLockTTL = time.Minute

func uploadLockPath(id string) string { return "uploadlocks/" + id }

type uploadLock struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// lockUpload makes the caller upload id's only writer until unlock. Over a
// driver without conditional creates there is no lock.
func (s *Server) lockUpload(ctx context.Context, id string) (unlock func(), err error) {
	c, ok := s.st.d.(storage.Creator)
	if !ok {
		return func() {}, nil
	}
	owner := newID()
	if err := createUploadLock(ctx, s.st, c, id, owner); err != nil {
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
				if err := s.st.putJSON(bg, uploadLockPath(id), uploadLock{Owner: owner, Expires: time.Now().Add(uploadLockTTL)}); err != nil {
					s.log.Warn("renew upload lock", "upload", id, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		if err := ignoreNotFound(s.st.d.Delete(bg, uploadLockPath(id))); err != nil {
			s.log.Warn("release upload lock", "upload", id, "err", err)
		}
	}, nil
}

// createUploadLock creates the lock, taking over one that expired.
func createUploadLock(ctx context.Context, st store, c storage.Creator, id, owner string) error {
	b, err := json.Marshal(uploadLock{Owner: owner, Expires: time.Now().Add(uploadLockTTL)})
	if err != nil {
		return err
	}
	busy := errf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "upload %s is being written by another request", id)
	err = c.Create(ctx, uploadLockPath(id), b)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		return err
	}
	var l uploadLock
	switch err := st.getJSON(ctx, uploadLockPath(id), &l); {
	case errors.Is(err, errdefs.ErrNotFound):
		// Released meanwhile: one more try.
	case err != nil:
		return err
	case l.Owner == owner:
		return nil // a create retried after its response was lost
	case time.Now().Before(l.Expires):
		return busy
	default:
		if err := ignoreNotFound(st.d.Delete(ctx, uploadLockPath(id))); err != nil {
			return err
		}
	}
	err = c.Create(ctx, uploadLockPath(id), b)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return busy
	}
	return err
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
