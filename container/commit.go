package container

import (
	"context"
	"io"
	"strings"

	"berth/archive"
	"berth/image"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// CommitOptions is `commit`.
type CommitOptions struct {
	Ref     string // repo[:tag]; empty makes a <none>:<none> image
	Author  string
	Comment string
	Changes []string // Dockerfile instructions applied to the new config
	Pause   bool     // freeze the container while its layer is read
}

// ContainerCommit makes an image of a container: its image plus the
// writable layer as a new read-only layer. It returns the image ID.
func (s *Service) ContainerCommit(ctx context.Context, name string, opts CommitOptions) (string, error) {
	e, err := s.lookup(name)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	rec := e.rec
	e.mu.Unlock()
	parent, err := s.opts.Images.Config(ctx, digest.Digest(rec.Image))
	if err != nil {
		return "", err
	}
	cfg := *parent
	cfg.Config = imageConfig(rec.Config)
	if err := image.ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", err
	}
	containerCfg := imageConfig(rec.Config)
	cfg.ContainerConfig = &containerCfg
	if opts.Pause && rec.State.Status == StatusRunning {
		if err := s.ContainerPause(ctx, rec.ID); err == nil {
			defer s.ContainerUnpause(context.WithoutCancel(ctx), rec.ID)
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.withLayer(ctx, &rec, func(lower, upper string, mode archive.WhiteoutMode) error {
			return archive.Diff(ctx, pw, lower, upper, mode)
		}))
	}()
	id, err := s.opts.Images.CommitImage(ctx, digest.Digest(rec.Image), &cfg, pr, image.CommitOptions{
		Ref: opts.Ref, Author: opts.Author, Comment: opts.Comment,
		CreatedBy: strings.Join(command(rec.Config), " "), Container: rec.ID,
	})
	pr.CloseWithError(io.ErrClosedPipe) // stop the differ if the store gave up first
	if err != nil {
		return "", err
	}
	s.publish(&rec, eventtypes.ActionCommit, map[string]string{"comment": opts.Comment, "imageID": id.String()})
	return id.String(), nil
}

// imageConfig is the part of a container's config an image keeps.
func imageConfig(c *container.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	out.User, out.Env, out.Entrypoint, out.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
	out.WorkingDir, out.Labels, out.StopSignal = c.WorkingDir, c.Labels, c.StopSignal
	out.Volumes, out.OnBuild, out.Shell, out.ArgsEscaped = c.Volumes, c.OnBuild, c.Shell, c.ArgsEscaped
	out.Healthcheck = c.Healthcheck
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	return out
}
