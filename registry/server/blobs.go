package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"berth/errdefs"
	"berth/registry/notify"
	"berth/registry/storage"
)

// getBlob answers GET and HEAD of a blob, honouring a single byte Range.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	l, err := s.st.repoBlob(r.Context(), rt.name, d)
	if err == nil && r.Method == http.MethodHead && s.doomedHint(r.Context(), d) {
		err = errdefs.ErrNotFound
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, rt.name)
	} else if err != nil {
		return err
	}
	if rd, ok := s.st.d.(storage.Redirector); ok && r.Method == http.MethodGet {
		url, err := rd.RedirectURL(r, l.Data)
		if err != nil {
			return err
		}
		if url != "" {
			w.Header().Set("Docker-Content-Digest", d.String())
			http.Redirect(w, r, url, http.StatusTemporaryRedirect)
			s.emit(r, notify.ActionPull, blobEvent(r, rt.name, d, l.Size))
			return nil
		}
	}
	start, end, partial, err := parseRange(r.Header.Get("Range"), l.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", l.Size))
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, l.Size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rc, err := s.st.readAt(r.Context(), l, start)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.WriteHeader(status)
	// A GET is a pull (each range of a resumed one too, as the CNCF
	// registry counts them); a HEAD is a check.
	s.emit(r, notify.ActionPull, blobEvent(r, rt.name, d, l.Size))
	// Once the status is out an error can only cut the body short, which
	// the client detects by Content-Length.
	if _, err := io.CopyN(w, rc, end-start); err != nil {
		s.log.DebugContext(r.Context(), "blob body cut short", "digest", d, "err", err)
	}
	return nil
}

// parseRange parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" range into
// a half-open [start, end). Multiple ranges are answered with the whole blob,
// which RFC 9110 allows.
func parseRange(h string, size int64) (start, end int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if h == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	bad := errf(http.StatusRequestedRangeNotSatisfiable, codeBlobUnknown, "range %q not satisfiable for size %d", h, size)
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false, bad
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, bad
		}
		return max(0, size-n), size, true, nil
	default:
		start, err = strconv.ParseInt(a, 10, 64)
		if err != nil || start < 0 || start >= size {
			return 0, 0, false, bad
		}
		end = size
		if b != "" {
			last, err := strconv.ParseInt(b, 10, 64)
			if err != nil || last < start {
				return 0, 0, false, bad
			}
			end = min(size, last+1)
		}
		return start, end, true, nil
	}
}

// deleteBlob removes the blob from the repository. Its bytes stay until
// garbage collection finds no repository linking them.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	err = s.st.d.Delete(r.Context(), layerPath(rt.name, d))
	if errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, rt.name)
	} else if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	s.emit(r, notify.ActionDelete, notify.Target{MediaType: blobMediaType, Digest: d, Repository: rt.name, URL: targetURL(r, rt.name, "blobs", d)})
	return nil
}
