package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"berth/container/spec"
	"berth/errdefs"
	"berth/mount"
	"berth/task"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/docker/go-units"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerStart is `start`.
func (s *Service) ContainerStart(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.rec.State.Status {
	case StatusRunning, StatusPaused:
		return fmt.Errorf("container %s: already started: %w", e.rec.ID, errdefs.ErrNotModified)
	case StatusRemoving:
		return errdefs.Errorf(errdefs.ErrConflict, "container is marked for removal and cannot be started")
	case StatusDead:
		return errdefs.Errorf(errdefs.ErrConflict, "container is marked for removal and cannot be started")
	}
	if e.restartCancel != nil {
		e.restartCancel()
		e.restartCancel = nil
	}
	e.rec.State.ManuallyStopped = false
	err = s.start(ctx, e)
	autoRemove := e.rec.HostConfig.AutoRemove
	if err == nil || !autoRemove {
		return err
	}
	// As dockerd: a --rm container whose start failed is removed at once.
	e.mu.Unlock()
	if rerr := s.remove(context.WithoutCancel(ctx), e); rerr != nil {
		s.log.Warn("auto-remove after failed start", "container", e.rec.ID, "err", rerr)
	}
	e.mu.Lock()
	return err
}

func (s *Service) rootfs(id string) string { return filepath.Join(s.containerDir(id), "rootfs") }

// start runs e's container; the caller holds e.mu. On failure the rootfs is
// unmounted again and the failure recorded in the state, as Docker shows a
// container whose command could not run ("Created", exit code 127).
func (s *Service) start(ctx context.Context, e *entry) (err error) {
	rec := &e.rec
	rootfs := s.rootfs(rec.ID)
	e.awaitShimGone() // the runtime must be done with the last run's id
	defer func() {
		if err != nil {
			s.teardown(ctx, rec)
			s.deactivateMounts(ctx, rec)
			mount.UnmountAll(rootfs)
			if code, ok := task.ExecFailureCode(err); ok {
				rec.State.ExitCode = code
			} else if rec.State.ExitCode == 0 {
				rec.State.ExitCode = 128
			}
			rec.State.Error = err.Error()
			s.save(e)
		}
	}()
	shim, err := s.createTask(ctx, rec)
	if err != nil {
		return err
	}
	s.handOver(e, shim)
	before := rec.State
	rec.State.Status = StatusRunning
	if before.Status != StatusRunning && before.Status != StatusPaused {
		rec.State.Pid, rec.State.StartedAt = shim.InitPid(), time.Now().UTC()
	}
	rec.State.ExitCode, rec.State.Error, rec.State.HasBeenStarted = 0, "", true
	rec.State.OOMKilled = false
	// The record is written while the runtime starts the process: the exit
	// of a short-lived container is handled only once both are done (it
	// needs e.mu), so the two would otherwise add up.
	saved := make(chan error, 1)
	go func() { saved <- s.save(e) }()
	err = shim.Start(ctx)
	serr := <-saved
	if err != nil {
		rec.State = before
		shim.Delete(context.WithoutCancel(ctx), true)
		return err
	}
	e.shim = shim
	if serr != nil {
		return serr
	}
	s.publish(rec, eventtypes.ActionStart, nil)
	go s.monitor(e, shim)
	return nil
}

// createTask prepares a run (rootfs, network, bundle) and has a new shim
// create the container. The shim starts up meanwhile, and the network's
// plumbing is finished while the runtime creates the container: both are
// only needed once the other work is done.
func (s *Service) createTask(ctx context.Context, rec *Record) (*task.Shim, error) {
	pending, err := s.launchShim(ctx, rec)
	if err != nil {
		return nil, err
	}
	created := false
	defer func() {
		if !created {
			pending.Abort()
		}
	}()
	if err := s.mountRootfs(ctx, rec); err != nil {
		return nil, err
	}
	netReady, err := s.writeBundle(ctx, rec)
	if err != nil {
		return nil, err
	}
	created = true
	shim, err := pending.Create(ctx)
	if err != nil {
		return nil, err
	}
	// The process must not run before its network is complete.
	if err := netReady(ctx); err != nil {
		shim.Delete(context.WithoutCancel(ctx), true)
		return nil, err
	}
	return shim, nil
}

// launchShim starts the shim of a new run, to be told to create the
// container once its bundle (the container's directory) is written.
func (s *Service) launchShim(ctx context.Context, rec *Record) (*task.PendingShim, error) {
	rt, err := s.runtime(rec.Runtime)
	if err != nil {
		return nil, err
	}
	os.RemoveAll(s.shimDir(rec.ID))
	return task.LaunchShim(ctx, task.ShimOptions{
		Binary: s.opts.Binary, ID: rec.ID, Bundle: s.containerDir(rec.ID), StateDir: s.shimDir(rec.ID), Runtime: rt,
		Tty: rec.Config.Tty, Stdin: rec.Config.OpenStdin, Log: s.logConfig(rec),
	})
}

// mountRootfs mounts the writable layer at <container>/rootfs and makes the
// working directory exist, owned by the container's user.
func (s *Service) mountRootfs(ctx context.Context, rec *Record) error {
	rootfs := s.rootfs(rec.ID)
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	mount.UnmountAll(rootfs) // a mount left by a crash
	mounts, err := s.opts.Snapshotter.Mounts(ctx, rec.Snapshot)
	if err != nil {
		return fmt.Errorf("container %s: rootfs: %w", rec.ID, err)
	}
	if rec.HostConfig.AutoRemove {
		// Without the option (a kernel before 5.10) the layer is merely
		// synced at exit.
		if err := mount.All(volatileMounts(mounts), rootfs); err == nil {
			return nil
		}
		mount.UnmountAll(rootfs)
	}
	if err := mount.All(mounts, rootfs); err != nil {
		return fmt.Errorf("container %s: mount rootfs: %w", rec.ID, err)
	}
	return nil
}

// writeBundle generates the OCI spec and writes config.json into the
// container's directory. It returns what waits for the container's network
// to be complete (see network.Service.Prepare).
func (s *Service) writeBundle(ctx context.Context, rec *Record) (func(context.Context) error, error) {
	dir := s.containerDir(rec.ID)
	rootfs := s.rootfs(rec.ID)
	user, err := spec.ResolveUser(rootfs, rec.Config.User, rec.HostConfig.GroupAdd)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	if err := makeWorkdir(rootfs, rec.Config.WorkingDir, user); err != nil {
		return nil, err
	}
	files, err := s.sandbox(ctx, rec)
	if err != nil {
		return nil, err
	}
	in := spec.Input{
		ID: rec.ID, Config: rec.Config, HostConfig: rec.HostConfig, Rootfs: rootfs, User: user,
		Hostname: rec.Config.Hostname, HostsPath: files.hosts, HostnamePath: files.hostname,
		ResolvConfPath: files.resolv, NetNSPath: files.netns, InitBinary: s.opts.Binary,
	}
	if img, err := s.opts.Images.Config(ctx, digestOf(rec.Image)); err == nil {
		in.Image = img.Config
	}
	s.host.fill(&in)
	devs, err := spec.ResolveDevices(rec.HostConfig.Devices)
	if err != nil {
		return nil, err
	}
	in.Devices = devs
	if in.Mounts, err = s.runtimeMounts(ctx, rec); err != nil {
		return nil, err
	}
	sp, err := spec.Generate(in)
	if err != nil {
		return nil, err
	}
	applyMountPropagation(sp, rec)
	if err := task.CheckRlimits(sp.Process.Rlimits); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), raw, 0o600); err != nil {
		return nil, fmt.Errorf("container %s: bundle: %w", rec.ID, err)
	}
	return files.ready, nil
}

// makeWorkdir creates the working directory inside rootfs when missing,
// owned by the user, as Docker does.
func makeWorkdir(rootfs, dir string, user spec.User) error {
	if dir == "" || dir == "/" {
		return nil
	}
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return os.Lchown(p, int(user.UID), int(user.GID))
}

// runtime returns the driver for a runtime name.
func (s *Service) runtime(name string) (*task.Runtime, error) {
	bin, ok := s.opts.Runtimes[name]
	if !ok {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "unknown or invalid runtime name: %s", name)
	}
	if name == "crun" {
		if err := task.HybridCgroupProblem(); err != nil {
			return nil, err
		}
	}
	return task.NewRuntime(bin, filepath.Join(s.opts.ExecRoot, "runtime", name)), nil
}

func (s *Service) logPath(id string) string {
	return filepath.Join(s.containerDir(id), id+"-json.log")
}

// logConfig applies --log-opt over the daemon's log-opts over Docker's
// defaults (10 MB x 3 files).
func (s *Service) logConfig(rec *Record) task.LogConfig {
	opts := map[string]string{}
	for k, v := range s.opts.LogOpts {
		opts[k] = v
	}
	for k, v := range rec.HostConfig.LogConfig.Config {
		opts[k] = v
	}
	cfg := task.LogConfig{Path: s.logPath(rec.ID), MaxSize: task.DefaultLogMaxSize, MaxFiles: task.DefaultLogMaxFiles}
	if v, ok := opts["max-size"]; ok {
		if n, err := units.RAMInBytes(v); err == nil {
			cfg.MaxSize = n
		}
	}
	if v, ok := opts["max-file"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			cfg.MaxFiles = n
		}
	}
	return cfg
}

// writeFileAtomic replaces path by temp file and rename, without fsync:
// it writes files regenerated at every start (the bundle's config.json),
// which a host crash makes moot.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
