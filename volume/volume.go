// Package volume keeps named and anonymous volumes and turns a container's
// -v, --mount, --tmpfs and --volumes-from requests into mounts.
//
// On disk, under <data-root>/volumes:
//
//	volumes/
//	  <name>/_data       the volume's content, bind-mounted into containers;
//	                     with options, the mount point of type/device/o
//	  .trash-<random>/   a volume being deleted (renamed away first, so a
//	                     crash never leaves a half-deleted volume behind a
//	                     live name); removed at the next start
//
// and in berth.db:
//
//	volumes/
//	  <name> -> record (JSON: name, driver, labels, options, created_at,
//	            filled: copy-up is done)
//
// A record is written before its directory is made, and a removal renames
// the directory away before the record goes, so a name in the bucket never
// points at another volume's old data. Which containers use a volume
// (references) and which running containers have it mounted (activations)
// are kept in memory: the container service owns that truth and re-adds
// its references when the daemon starts (Reference).
//
// The local driver's options follow Docker's: "type", "device" and "o" make
// _data a mount point, mounted when the first container using the volume
// starts and unmounted when the last one stops; e.g. type=tmpfs,device=tmpfs
// or type=none,device=/srv/x,o=bind.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"berth/errdefs"
	"berth/events"
	"berth/mount"

	eventtypes "github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"
)

var bucketVolumes = []byte("volumes")

// AnonymousLabel marks volumes created without a name; `volume prune`
// removes only those unless asked for all.
const AnonymousLabel = "com.docker.volume.anonymous"

// Options configures a Service.
type Options struct {
	DB     *bolt.DB
	Root   string      // <data-root>/volumes
	Events *events.Bus // nil: no events
	Logger *slog.Logger
}

// Service owns the volumes. One lock guards the records' directories, the
// references and the activations; it is held across the (short) mkdir,
// mount and unmount calls so that a volume can never be removed between
// being found and being referenced.
type Service struct {
	db     *bolt.DB
	root   string
	events *events.Bus
	log    *slog.Logger

	mu   sync.Mutex
	refs map[string]map[string]bool // volume -> container IDs using it
	// active maps a volume to the running containers (and cp operations)
	// that have it mounted; the value says whether its mount was announced.
	active map[string]map[string]bool
	// mounted records which volumes with options this daemon mounted (or
	// found mounted) at _data.
	mounted map[string]bool
}

type record struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels"`
	Options   map[string]string `json:"options"`
	CreatedAt time.Time         `json:"created_at"`
	// Filled is set once the volume had content when a container asked
	// for copy-up: image data is copied into a volume at most once
	// (tmpfs-backed volumes excepted, see Populate).
	Filled bool `json:"filled,omitempty"`
}

// New opens the volume store and clears what an interrupted removal left.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Root, 0o701); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	if err := opts.DB.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketVolumes)
		return err
	}); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	s := &Service{db: opts.DB, root: opts.Root, events: opts.Events, log: opts.Logger,
		refs: map[string]map[string]bool{}, active: map[string]map[string]bool{}, mounted: map[string]bool{}}
	ents, err := os.ReadDir(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".trash-") {
			if err := s.purge(filepath.Join(opts.Root, e.Name())); err != nil {
				s.log.Warn("remove interrupted volume deletion", "dir", e.Name(), "err", err)
			}
		}
	}
	return s, nil
}

// Path is where a volume's content lives on the host.
func (s *Service) Path(name string) string { return filepath.Join(s.root, name, "_data") }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkName(name string) error {
	if len(name) == 1 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "create %s: volume name is too short, names should be at least two alphanumeric characters", name)
	}
	if !validName.MatchString(name) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	return nil
}

func checkDriver(name, driver string) error {
	if driver == "" || driver == DefaultDriver {
		return nil
	}
	return errdefs.Errorf(errdefs.ErrNotFound, "create %s: error looking up volume plugin %s: plugin %q not found", name, driver, driver)
}

func noSuchVolume(op, name string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "%s %s: no such volume", op, name)
}

func randomName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) get(name string) (*record, error) {
	var r *record
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketVolumes).Get([]byte(name))
		if raw == nil {
			return nil
		}
		r = &record{}
		if err := json.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("volume %s: corrupt record: %w", name, err)
		}
		return nil
	})
	if err == nil && r == nil {
		return nil, noSuchVolume("get", name)
	}
	return r, err
}

func (s *Service) put(r *record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketVolumes).Put([]byte(r.Name), raw) })
}

func (s *Service) all() ([]*record, error) {
	var out []*record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).ForEach(func(k, v []byte) error {
			r := &record{}
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("volume %s: corrupt record: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// create makes a volume, or returns the existing one of that name (whose
// options and labels stay as they were, as Docker keeps them); s.mu is
// held. An empty name makes an anonymous volume.
func (s *Service) create(name, driver string, opts, labels map[string]string) (*record, bool, error) {
	if name == "" {
		name = randomName()
		labels = withLabel(labels, AnonymousLabel, "")
	}
	if err := checkDriver(name, driver); err != nil {
		return nil, false, err
	}
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	if r, err := s.get(name); err == nil {
		return r, false, s.ensureDir(r.Name)
	} else if !errdefs.NotFound(err) {
		return nil, false, err
	}
	if err := validateOptions(opts); err != nil {
		return nil, false, errdefs.Errorf(errdefs.ErrInvalidArgument, "create %s: %s", name, err.Error())
	}
	r := &record{Name: name, Driver: DefaultDriver, Labels: labels, Options: opts, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := s.put(r); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", name, err)
	}
	if err := s.ensureDir(name); err != nil {
		s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketVolumes).Delete([]byte(name)) })
		return nil, false, fmt.Errorf("create %s: %w", name, err)
	}
	s.publish(name, eventtypes.ActionCreate, nil)
	return r, true, nil
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for key, val := range labels {
		out[key] = val
	}
	out[k] = v
	return out
}

// ensureDir makes the volume's directories; a record written just before
// a crash may have none yet.
func (s *Service) ensureDir(name string) error {
	if err := os.MkdirAll(filepath.Dir(s.Path(name)), 0o701); err != nil {
		return err
	}
	if err := os.Mkdir(s.Path(name), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// remove deletes an unused volume; s.mu is held. The directory is renamed
// away before the record goes, then deleted.
func (s *Service) remove(name string) error {
	r, err := s.get(name)
	if err != nil {
		return err
	}
	if users := sortedKeys(s.refs[name]); len(users) > 0 {
		return errdefs.Errorf(errdefs.ErrConflict, "remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	if err := s.unmountData(r); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	dir := filepath.Join(s.root, name)
	trash := filepath.Join(s.root, ".trash-"+randomName()[:16])
	if err := os.Rename(dir, trash); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketVolumes).Delete([]byte(name)) }); err != nil {
		// Put the data back under its name: the volume still exists.
		os.Rename(trash, dir)
		return fmt.Errorf("remove %s: %w", name, err)
	}
	delete(s.mounted, name)
	if err := s.purge(trash); err != nil {
		s.log.Warn("delete removed volume's data", "volume", name, "err", err)
	}
	s.publish(name, eventtypes.ActionDestroy, nil)
	return nil
}

// publish sends a volume event with Docker's attributes (the driver, plus
// extra).
func (s *Service) publish(name string, action eventtypes.Action, extra map[string]string) {
	if s.events == nil {
		return
	}
	attrs := map[string]string{"driver": DefaultDriver}
	for k, v := range extra {
		attrs[k] = v
	}
	s.events.Publish(eventtypes.VolumeEventType, action, name, attrs)
}

// purge deletes a renamed-away volume directory, never reaching through
// a mount into someone else's data.
func (s *Service) purge(dir string) error {
	if err := mount.UnmountAll(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
