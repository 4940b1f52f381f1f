package api

import (
	"context"
	"net/http"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

// CommitBackend makes an image from a container (POST /commit).
type CommitBackend interface {
	ContainerCommit(ctx context.Context, name string, opts berthcontainer.CommitOptions) (string, error)
}

func (s *server) addCommitRoutes() {
	s.handle(http.MethodPost, "/commit", s.commitContainer)
}

// commitContainer answers 201 {"Id": "sha256:..."}. The request body (a
// container config to merge) is accepted but not applied: --change is the
// documented way to alter the config, and what the CLIs send.
func (s *server) commitContainer(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	name := q.Get("container")
	if name == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "No container specified")
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	pause := q.Get("pause") == "" || boolValue(q, "pause")
	id, err := s.opts.Commit.ContainerCommit(r.Context(), name, berthcontainer.CommitOptions{
		Ref: ref, Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"], Pause: pause,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
	return nil
}
