// Package daemon wires berth's services together: it reads the
// configuration, takes the data root's lock, opens berth.db and the stores,
// picks the storage driver and serves the Engine API. It owns no logic of its
// own beyond that wiring, the lock and the start-up clean-up.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"berth/api"
	"berth/build"
	"berth/container"
	"berth/content"
	"berth/errdefs"
	"berth/events"
	"berth/image"
	"berth/network"
	"berth/remote"
	"berth/snapshot"
	"berth/snapshot/btrfs"
	"berth/snapshot/overlay"
	"berth/snapshot/vfs"
	"berth/task"
	"berth/version"
	"berth/volume"

	nettypes "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// Daemon is a running engine.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	lock    *os.File
	db      *bolt.DB
	content *content.Store
	sn      snapshot.Snapshotter
	images  *image.Service
	remote  *remote.Client
	ctrs    *container.Service
	net     *network.Service
	vols    *volume.Service
	builder *build.Builder
	events  *events.Bus
	id      string
	started time.Time
}

// New opens the daemon's state. It fails when another daemon holds the data
// root, when the storage driver cannot work here, or when state is corrupt.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Daemon, err error) {
	cfg = cfg.withDefaults()
	d := &Daemon{cfg: cfg, log: log, started: time.Now()}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if d.lock, err = lockDataRoot(cfg.DataRoot); err != nil {
		return nil, err
	}
	if d.id, err = engineID(cfg.DataRoot); err != nil {
		return nil, err
	}
	d.db, err = bolt.Open(filepath.Join(cfg.DataRoot, "berth.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open berth.db: %w", err)
	}
	if d.content, err = content.New(filepath.Join(cfg.DataRoot, "content")); err != nil {
		return nil, err
	}
	if d.sn, err = newSnapshotter(ctx, cfg.StorageDriver, cfg.DataRoot, d.db); err != nil {
		return nil, err
	}
	d.remote = remote.New(remote.Options{Insecure: cfg.InsecureRegistries, Mirrors: cfg.RegistryMirrors,
		CertsDir: remote.DefaultCertsDir, UserAgent: "berth/" + version.Version, Logger: log})
	d.images, err = image.New(image.Options{DB: d.db, Content: d.content, Snapshotter: d.sn, Driver: cfg.StorageDriver, Logger: log,
		Remote: d.remote, MaxDownloads: cfg.MaxDownloads, MaxUploads: cfg.MaxUploads})
	if err != nil {
		return nil, err
	}
	d.events = events.New()
	if d.net, err = newNetwork(ctx, cfg, d.db, log); err != nil {
		return nil, err
	}
	if d.vols, err = volume.New(ctx, volume.Options{DB: d.db, Root: filepath.Join(cfg.DataRoot, "volumes"), Events: d.events, Logger: log}); err != nil {
		return nil, err
	}
	if d.ctrs, err = newContainers(cfg, d, log); err != nil {
		return nil, err
	}
	d.images.SetContainerUsage(d.ctrs)
	if d.builder, err = newBuilder(ctx, cfg, d, log); err != nil {
		return nil, err
	}
	d.cleanup(ctx)
	d.ctrs.Restore(ctx)
	return d, nil
}

// newContainers builds the container service with the runtimes this host
// offers plus daemon.json's.
func newContainers(cfg Config, d *Daemon, log *slog.Logger) (*container.Service, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate the berth binary for shims: %w", err)
	}
	runtimes := map[string]string{}
	for name, p := range map[string]string{"runc": task.RuncPath, "crun": task.CrunPath} {
		if bin, err := exec.LookPath(name); err == nil {
			runtimes[name] = bin
		} else if _, err := os.Stat(p); err == nil {
			runtimes[name] = p
		}
	}
	for name, r := range cfg.Runtimes {
		runtimes[name] = r.Path
	}
	if _, ok := runtimes[cfg.DefaultRuntime]; !ok {
		return nil, fmt.Errorf("default runtime %q is not installed or configured (install the runc package, or set default-runtime): %w", cfg.DefaultRuntime, errdefs.ErrInvalidArgument)
	}
	return container.New(container.Options{
		DB: d.db, Root: filepath.Join(cfg.DataRoot, "containers"), ExecRoot: cfg.ExecRoot,
		Images: d.images, Snapshotter: d.sn, Driver: cfg.StorageDriver, Binary: self,
		Runtimes: runtimes, DefaultRuntime: cfg.DefaultRuntime, LogOpts: cfg.LogOpts,
		Events: d.events, Network: d.net, Volumes: d.vols, Logger: log,
	})
}

// newBuilder builds images with the image and container services; it
// removes what builds interrupted by a crash left behind.
func newBuilder(ctx context.Context, cfg Config, d *Daemon, log *slog.Logger) (*build.Builder, error) {
	b, err := build.New(build.Options{DB: d.db, Root: filepath.Join(cfg.DataRoot, "build"), Images: d.images,
		Containers: d.ctrs, Snapshotter: d.sn, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := b.Cleanup(ctx); err != nil {
		log.Warn("build clean-up", "err", err)
	}
	return b, nil
}

// newNetwork starts networking: the default bridge, IPAM and rules.
func newNetwork(ctx context.Context, cfg Config, db *bolt.DB, log *slog.Logger) (*network.Service, error) {
	pools := make([]network.Pool, len(cfg.DefaultAddressPools))
	for i, p := range cfg.DefaultAddressPools {
		pools[i] = network.Pool{Base: p.Base, Size: p.Size}
	}
	// Each daemon's rules live in their own nftables table, named after its
	// bridge, so daemons side by side never touch each other's rules.
	table := "berth"
	if cfg.Bridge != "berth0" {
		table = "berth-" + cfg.Bridge
	}
	return network.New(ctx, network.Options{DB: db, ExecRoot: cfg.ExecRoot, Bip: cfg.Bip, DefaultAddressPools: pools,
		BridgeName: cfg.Bridge, TableName: table, Logger: log})
}

// networkBackend serves /networks: the network service, with connect and
// disconnect going through the container service, which knows names and
// whether a container runs.
type networkBackend struct {
	*network.Service
	ctrs *container.Service
}

func (b networkBackend) NetworkConnect(ctx context.Context, ref, name string, cfg *nettypes.EndpointSettings) error {
	return b.ctrs.NetworkConnect(ctx, ref, name, cfg)
}

func (b networkBackend) NetworkDisconnect(ctx context.Context, ref, name string, force bool) error {
	return b.ctrs.NetworkDisconnect(ctx, ref, name, force)
}

// newSnapshotter is the one place that picks a storage driver.
func newSnapshotter(ctx context.Context, name, dataRoot string, db *bolt.DB) (snapshot.Snapshotter, error) {
	root := filepath.Join(dataRoot, "snapshots", name)
	switch name {
	case "overlay2":
		return overlay.New(ctx, root, db)
	case "vfs":
		return vfs.New(ctx, root, db)
	case "btrfs":
		return btrfs.New(ctx, root, db)
	case "overlay":
		return nil, fmt.Errorf("storage driver %q (overlay v1) is deprecated and not offered: use overlay2, which needs the same kernel support: %w", name, errdefs.ErrInvalidArgument)
	case "aufs":
		return nil, fmt.Errorf("storage driver %q is not supported: aufs is not in mainline Linux kernels; use overlay2 (the default), btrfs or vfs: %w", name, errdefs.ErrInvalidArgument)
	case "devicemapper":
		return nil, fmt.Errorf("storage driver %q is not supported: it was removed from Docker and needs device-mapper thin pools; use overlay2 (the default), btrfs or vfs: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("storage driver %q: unknown driver; choose overlay2 (default), btrfs or vfs: %w", name, errdefs.ErrInvalidArgument)
}

// lockDataRoot makes sure one daemon owns a data root. The lock is released
// by the kernel when the process exits, however it exits.
func lockDataRoot(root string) (*os.File, error) {
	p := filepath.Join(root, "berth.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data root: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(p)
		f.Close()
		holder := strings.TrimSpace(string(pid))
		if holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("data root %s is in use by another berth daemon (pid %s): %w", root, holder, errdefs.ErrConflict)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// engineID is the daemon's stable identity, shown by `info`.
func engineID(root string) (string, error) {
	p := filepath.Join(root, "engine-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := newUUID()
	if err := writeFileAtomic(p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	return id, nil
}

// cleanup removes what a crash may have left: half-extracted layers and
// abandoned ingests. Committed data is never touched.
func (d *Daemon) cleanup(ctx context.Context) {
	if err := d.images.Cleanup(ctx); err != nil {
		d.log.Warn("image store clean-up", "err", err)
	}
	if err := d.content.AbortStale(ctx, 24*time.Hour); err != nil {
		d.log.Warn("content store clean-up", "err", err)
	}
}

// Serve serves the Engine API on every configured host until ctx ends, then
// shuts down gracefully.
func (d *Daemon) Serve(ctx context.Context) error {
	handler := api.New(api.Options{
		Images: d.images, System: d, Version: versionInfo(ctx, d.cfg), Logger: d.log,
		Distribution: d.images, Auth: d.remote, ImageArchive: d.images,
		Containers: d.ctrs, Events: d.events, Networks: networkBackend{d.net, d.ctrs}, Commit: d.ctrs,
		Volumes: d.vols, Build: d.builder,
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	var listeners []net.Listener
	for _, h := range d.cfg.Hosts {
		l, err := listen(h)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	if err := writeFileAtomic(d.cfg.Pidfile, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	defer os.Remove(d.cfg.Pidfile)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		d.log.Info("API listening", "addr", l.Addr().String())
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	d.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	for _, h := range d.cfg.Hosts {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			os.Remove(p)
		}
	}
	return err
}

// Close releases the daemon's state; the lock goes last.
func (d *Daemon) Close() error {
	var errs []error
	if d.net != nil {
		// Keeps running containers' networking (live restore).
		errs = append(errs, d.net.Close())
	}
	if d.sn != nil {
		errs = append(errs, d.sn.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}
