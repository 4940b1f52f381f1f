package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

// pathStatHeader carries a stat of the copied path as base64 JSON, so a
// client learns what it is copying before it reads the tar.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "path cannot be empty")
	}
	return p, nil
}

func (s *server) statContainerPath(w http.ResponseWriter, r *http.Request, req request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.opts.Containers.ContainerStatPath(r.Context(), req.name, p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) getContainerArchive(w http.ResponseWriter, r *http.Request, req request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := s.opts.Containers.ContainerArchivePath(r.Context(), req.name, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.abortStream(r, err)
	}
	return nil
}

func (s *server) putContainerArchive(w http.ResponseWriter, r *http.Request, req request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := berthcontainer.CopyToOptions{
		NoOverwriteDirNonDir: boolValue(q, "noOverwriteDirNonDir"),
		CopyUIDGID:           boolValue(q, "copyUIDGID"),
	}
	if err := s.opts.Containers.ContainerExtractToDir(r.Context(), req.name, p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) exportContainer(w http.ResponseWriter, r *http.Request, req request) error {
	lw := &lazyWriter{w: w, header: http.Header{"Content-Type": {"application/x-tar"}}}
	err := s.opts.Containers.ContainerExport(r.Context(), req.name, lw)
	if err != nil && lw.started {
		s.abortStream(r, err)
	}
	return err
}

// abortStream ends a response whose tar body broke half-way by dropping
// the connection: the client then sees a truncated transfer instead of a
// tar with an error message spliced into it.
func (s *server) abortStream(r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "stream failed", "method", r.Method, "path", r.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}
