package container

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"berth/container/spec"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerCreate is `create`: everything is validated and the writable
// layer prepared; nothing runs yet. On failure nothing is left behind.
func (s *Service) ContainerCreate(ctx context.Context, opts CreateOptions) (container.CreateResponse, error) {
	warnings, err := s.fitResources(opts.HostConfig)
	if err != nil {
		return container.CreateResponse{}, err
	}
	rec, err := s.newRecord(ctx, opts)
	if err != nil {
		return container.CreateResponse{}, err
	}
	e := &entry{rec: *rec, exited: make(chan struct{}), removed: make(chan struct{})}
	if err := s.reserve(e, opts.Name); err != nil {
		return container.CreateResponse{}, err
	}
	undo := func() {
		s.detachMounts(ctx, &e.rec, true)
		s.release(e)
		os.RemoveAll(s.containerDir(e.rec.ID))
	}
	if err := s.attachMounts(ctx, e); err != nil {
		undo()
		return container.CreateResponse{}, err
	}
	if err := os.MkdirAll(s.containerDir(e.rec.ID), 0o710); err != nil {
		undo()
		return container.CreateResponse{}, fmt.Errorf("container %s: %w", e.rec.ID, err)
	}
	if _, err := s.opts.Snapshotter.Prepare(ctx, e.rec.Snapshot, e.rec.Parent); err != nil {
		undo()
		return container.CreateResponse{}, fmt.Errorf("container %s: writable layer: %w", e.rec.ID, err)
	}
	e.mu.Lock()
	err = s.save(e)
	e.mu.Unlock()
	if err != nil {
		s.opts.Snapshotter.Remove(context.WithoutCancel(ctx), e.rec.Snapshot)
		undo()
		return container.CreateResponse{}, err
	}
	s.publish(&e.rec, eventtypes.ActionCreate, nil)
	return container.CreateResponse{ID: e.rec.ID, Warnings: warnings}, nil
}

// newRecord validates the request and builds the record, touching nothing.
func (s *Service) newRecord(ctx context.Context, opts CreateOptions) (*Record, error) {
	if opts.Config == nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Config cannot be empty in order to create a container")
	}
	if opts.Name != "" && !validName.MatchString(opts.Name) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", opts.Name)
	}
	imgID, err := s.opts.Images.Resolve(ctx, opts.Config.Image)
	if err != nil {
		return nil, err
	}
	img, err := s.opts.Images.Config(ctx, imgID)
	if err != nil {
		return nil, err
	}
	merged, err := spec.Merge(opts.Config, img.Config)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	hc := opts.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := s.validateHostConfig(hc); err != nil {
		return nil, err
	}
	if err := s.checkNetworking(ctx, opts, hc); err != nil {
		return nil, err
	}
	id := newID()
	if merged.Hostname == "" {
		merged.Hostname = defaultHostname(id, hc)
	}
	parent, err := s.opts.Images.TopLayer(ctx, imgID)
	if err != nil {
		return nil, err
	}
	rec := &Record{
		ID: id, Created: time.Now().UTC(), Image: imgID.String(), Config: merged, HostConfig: hc,
		Networking: opts.NetworkingConfig, Runtime: hc.Runtime, Driver: s.opts.Driver,
		Snapshot: id, Parent: parent, State: State{Status: StatusCreated},
	}
	if rec.Runtime == "" {
		rec.Runtime = s.opts.DefaultRuntime
	}
	// A dry run of the spec catches what Docker refuses at create (caps,
	// ulimits, memory, devices) before anything is stored.
	dry := spec.Input{ID: id, Config: merged, HostConfig: hc, Image: img.Config, Rootfs: "/", InitBinary: s.opts.Binary}
	s.host.fill(&dry)
	joinNetworkDryRun(&dry)
	if _, err := spec.Generate(dry); err != nil {
		return nil, err
	}
	return rec, nil
}

func (s *Service) validateHostConfig(hc *container.HostConfig) error {
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.Runtime != "" {
		if _, ok := s.opts.Runtimes[hc.Runtime]; !ok {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "unknown or invalid runtime name: %s", hc.Runtime)
		}
	}
	p := hc.RestartPolicy
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	if hc.AutoRemove && p.Name != "" && p.Name != container.RestartPolicyDisabled {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// reserve claims the name (or generates one) and registers e.
func (s *Service) reserve(e *entry, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		name = generateName(func(n string) bool { _, ok := s.byName[n]; return ok })
	}
	name = "/" + strings.TrimPrefix(name, "/")
	if other, ok := s.byName[name]; ok {
		return errdefs.Errorf(errdefs.ErrConflict, `Conflict. The container name "%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, other.rec.ID)
	}
	e.rec.Name = name
	s.byName[name] = e
	s.byID[e.rec.ID] = e
	return nil
}

func (s *Service) release(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[e.rec.Name] == e {
		delete(s.byName, e.rec.Name)
	}
	delete(s.byID, e.rec.ID)
}
