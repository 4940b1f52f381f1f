package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"berth/errdefs"
	"berth/events"
	"berth/image"
	"berth/snapshot"
	"berth/task"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"
)

// Options configures a Service.
type Options struct {
	DB          *bolt.DB
	Root        string // <data-root>/containers
	ExecRoot    string // <exec-root>
	Images      *image.Service
	Snapshotter snapshot.Snapshotter
	Driver      string
	// Binary is the berth executable the shims run as.
	Binary string
	// Runtimes maps a runtime name to its binary; DefaultRuntime names one.
	Runtimes       map[string]string
	DefaultRuntime string
	LogOpts        map[string]string // daemon-wide log-opts (max-size, max-file)
	Events         *events.Bus
	Network        Networker // nil: containers get loopback only
	// Volumes makes and mounts volumes; nil refuses requests for volumes
	// (binds and tmpfs mounts still work).
	Volumes VolumeStore
	Logger  *slog.Logger
}

// Service owns the containers. Each container has its own lock; the
// service lock guards only the maps and is never held across I/O.
type Service struct {
	opts Options
	log  *slog.Logger
	host hostFacts

	mu     sync.Mutex
	byID   map[string]*entry
	byName map[string]*entry // "/name" -> entry, names reserved at create
	execs  map[string]*execEntry
}

// entry is one container: its persisted record and its live handles.
type entry struct {
	mu   sync.Mutex
	rec  Record
	shim *task.Shim
	// exited is closed and replaced at every exit, so waiters can block
	// on the current run without polling.
	exited chan struct{}
	// removed is closed when the container is gone.
	removed chan struct{}
	// restartCancel stops a pending policy restart.
	restartCancel context.CancelFunc
	// manualRestart is set while a restart stops the container: that exit
	// does not auto-remove it.
	manualRestart bool
	// shimGone, when set, is closed once the last run's shim has deleted
	// the container from the runtime and exited (see handleExit).
	shimGone chan struct{}
	// pending are attachers waiting for the next start.
	pending []chan pendingStart
	// lastStats is the previous stats sample, for CPU percentages.
	lastStats *container.StatsResponse
}

// New loads the containers of a previous run. Restore reconnects the ones
// that were running.
func New(opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.DB.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketContainers)
		return err
	}); err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	for _, d := range []string{opts.Root, filepath.Join(opts.ExecRoot, "shims"), filepath.Join(opts.ExecRoot, "runtime")} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, fmt.Errorf("container store: %w", err)
		}
	}
	s := &Service{opts: opts, log: opts.Logger, host: readHostFacts(), byID: map[string]*entry{}, byName: map[string]*entry{}, execs: map[string]*execEntry{}}
	recs, err := loadRecords(opts.DB)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		e := &entry{rec: *r, exited: make(chan struct{}), removed: make(chan struct{})}
		s.byID[r.ID] = e
		s.byName[r.Name] = e
	}
	return s, nil
}

func noSuchContainer(name string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "No such container: %s", name)
}

// lookup finds a container by full ID, name (with or without "/") or an
// unambiguous ID prefix, as Docker does.
func (s *Service) lookup(name string) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[name]; ok {
		return e, nil
	}
	if e, ok := s.byName["/"+strings.TrimPrefix(name, "/")]; ok {
		return e, nil
	}
	if name == "" {
		return nil, noSuchContainer(name)
	}
	var found []*entry
	for id, e := range s.byID {
		if strings.HasPrefix(id, name) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, noSuchContainer(name)
	}
	return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "multiple IDs found with provided prefix: %s", name)
}

// all returns the entries, newest first.
func (s *Service) all() []*entry {
	s.mu.Lock()
	out := make([]*entry, 0, len(s.byID))
	for _, e := range s.byID {
		out = append(out, e)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].created().After(out[j].created()) })
	return out
}

func (e *entry) created() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec.Created
}

// awaitShimGone waits for the last run's shim to be gone; e.mu is held.
func (e *entry) awaitShimGone() {
	if e.shimGone != nil {
		<-e.shimGone
		e.shimGone = nil
	}
}

// save persists e's record; the caller holds e.mu.
func (s *Service) save(e *entry) error {
	return s.opts.DB.Update(func(tx *bolt.Tx) error { return putRecord(tx, &e.rec) })
}

// publish sends a container event with Docker's attributes.
func (s *Service) publish(rec *Record, action eventtypes.Action, extra map[string]string) {
	if s.opts.Events == nil {
		return
	}
	attrs := map[string]string{"name": strings.TrimPrefix(rec.Name, "/"), "image": rec.Config.Image}
	for k, v := range rec.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	s.opts.Events.Publish(eventtypes.ContainerEventType, action, rec.ID, attrs)
}

// ImageUsers implements image.ContainerUsage for rmi.
func (s *Service) ImageUsers(ctx context.Context, imageID string) ([]string, bool) {
	var ids []string
	running := false
	for _, e := range s.all() {
		e.mu.Lock()
		if e.rec.Image == imageID {
			if e.rec.State.IsRunning() || e.rec.State.Status == StatusRestarting {
				running = true
				ids = append([]string{e.rec.ID}, ids...)
			} else {
				ids = append(ids, e.rec.ID)
			}
		}
		e.mu.Unlock()
	}
	return ids, running
}

func (s *Service) containerDir(id string) string { return filepath.Join(s.opts.Root, id) }

// shimDir is named by half the ID (128 bits, still unique) so that the
// sockets inside stay under the 108-byte limit of unix socket paths.
func (s *Service) shimDir(id string) string { return filepath.Join(s.opts.ExecRoot, "shims", id[:32]) }
