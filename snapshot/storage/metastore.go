// Package storage is the metadata and directory bookkeeping that berth's
// snapshotters share: which snapshots exist, their kind, parent, labels and
// times, and the internal id that names each snapshot's directory.
//
// The metadata lives in the daemon's bbolt database, shared with other
// packages. Each snapshotter owns one child bucket of "snapshots":
//
//	snapshots/                     top bucket, shared by every snapshotter
//	  <driver>/                    "overlay2", "vfs", ...
//	    keys/
//	      <key>/                   one bucket per snapshot (key or committed name)
//	        id       -> internal id, the directory name (hex)
//	        kind     -> snapshot.Kind, one byte
//	        parent   -> parent key (absent for a base layer)
//	        created  -> time.Time.MarshalBinary
//	        updated  -> time.Time.MarshalBinary
//	        labels/  -> <label> = <value>
//	        children/ -> <child key> = "" (makes "has children?" one lookup)
//	    ids/
//	      <id>     -> <key>        reverse index, for startup cleanup
//
// Directories (see Dirs) and records are ordered so that a crash leaves the
// old state or the new one: a directory is complete before its record is
// written, and a record is deleted before its directory is. A directory
// without a record is garbage that Dirs.Cleanup removes at startup.
// Transactions hold no file I/O: callers do the slow copying outside them.
package storage

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"berth/errdefs"
	"berth/snapshot"
)

var (
	bucketTop      = []byte("snapshots")
	bucketKeys     = []byte("keys")
	bucketIDs      = []byte("ids")
	bucketLabels   = []byte("labels")
	bucketChildren = []byte("children")
	fieldID        = []byte("id")
	fieldKind      = []byte("kind")
	fieldParent    = []byte("parent")
	fieldCreated   = []byte("created")
	fieldUpdated   = []byte("updated")
)

// MetaStore records one snapshotter's snapshots in its bucket of a shared
// bbolt database. Safe for concurrent use: bbolt serialises writers.
type MetaStore struct {
	db     *bbolt.DB
	driver []byte
}

// Snapshot is what a driver needs to build mounts: its own directory id and
// the ids of its parent chain, nearest first.
type Snapshot struct {
	ID        string
	Kind      snapshot.Kind
	ParentIDs []string
}

// NewMetaStore creates the driver's buckets if needed.
func NewMetaStore(db *bbolt.DB, driver string) (*MetaStore, error) {
	s := &MetaStore{db: db, driver: []byte(driver)}
	err := db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketTop)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists(s.driver)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketKeys); err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketIDs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata for %s: %w", driver, err)
	}
	return s, nil
}

func (s *MetaStore) driverBucket(tx *bbolt.Tx) *bbolt.Bucket {
	return tx.Bucket(bucketTop).Bucket(s.driver)
}

func (s *MetaStore) view(ctx context.Context, fn func(keys, ids *bbolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		b := s.driverBucket(tx)
		return fn(b.Bucket(bucketKeys), b.Bucket(bucketIDs))
	})
}

func (s *MetaStore) update(ctx context.Context, fn func(keys, ids *bbolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := s.driverBucket(tx)
		return fn(b.Bucket(bucketKeys), b.Bucket(bucketIDs))
	})
}

// Stat returns the Info of key.
func (s *MetaStore) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	var info snapshot.Info
	err := s.view(ctx, func(keys, _ *bbolt.Bucket) error {
		b, err := snapshotBucket(keys, key)
		if err != nil {
			return err
		}
		info, err = readInfo(key, b)
		return err
	})
	return info, err
}

// Get returns key's id, kind and parent chain.
func (s *MetaStore) Get(ctx context.Context, key string) (Snapshot, error) {
	var snap Snapshot
	err := s.view(ctx, func(keys, _ *bbolt.Bucket) error {
		var err error
		snap, err = chain(keys, key)
		return err
	})
	return snap, err
}

// Check reports whether Create(key, parent) would succeed now. Drivers call
// it before expensive work (a vfs copy) so that a wrong key fails fast;
// Create checks again because the answer may change meanwhile.
func (s *MetaStore) Check(ctx context.Context, key, parent string) error {
	return s.view(ctx, func(keys, _ *bbolt.Bucket) error {
		return checkCreate(keys, key, parent)
	})
}

// Create records a new View or Active snapshot whose directory id already
// exists on disk, and returns it with its parent chain.
func (s *MetaStore) Create(ctx context.Context, id, key, parent string, kind snapshot.Kind, opts ...snapshot.Opt) (Snapshot, error) {
	if kind != snapshot.KindActive && kind != snapshot.KindView {
		return Snapshot{}, fmt.Errorf("snapshot %q: create as %s: %w", key, kind, errdefs.ErrInvalidArgument)
	}
	info := snapshot.Info{Kind: kind, Name: key, Parent: parent}
	for _, o := range opts {
		o(&info)
	}
	info.Created = time.Now().UTC()
	info.Updated = info.Created
	var snap Snapshot
	err := s.update(ctx, func(keys, ids *bbolt.Bucket) error {
		if err := checkCreate(keys, key, parent); err != nil {
			return err
		}
		if ids.Get([]byte(id)) != nil {
			return fmt.Errorf("snapshot id %s: %w", id, errdefs.ErrAlreadyExists)
		}
		if err := writeSnapshot(keys, id, info); err != nil {
			return err
		}
		if parent != "" {
			if err := keys.Bucket([]byte(parent)).Bucket(bucketChildren).Put([]byte(key), nil); err != nil {
				return err
			}
		}
		if err := ids.Put([]byte(id), []byte(key)); err != nil {
			return err
		}
		var err error
		snap, err = chain(keys, key)
		return err
	})
	return snap, err
}

// Commit turns the Active snapshot key into the Committed snapshot name,
// keeping its id and labels (opts may add labels).
func (s *MetaStore) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) (Snapshot, error) {
	var snap Snapshot
	err := s.update(ctx, func(keys, ids *bbolt.Bucket) error {
		b, err := snapshotBucket(keys, key)
		if err != nil {
			return err
		}
		info, err := readInfo(key, b)
		if err != nil {
			return err
		}
		if info.Kind != snapshot.KindActive {
			return fmt.Errorf("commit snapshot %q: it is %s, not active: %w", key, info.Kind, errdefs.ErrFailedPrecondition)
		}
		if keys.Bucket([]byte(name)) != nil {
			return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		id := string(b.Get(fieldID))
		info.Name, info.Kind = name, snapshot.KindCommitted
		for _, o := range opts {
			o(&info)
		}
		info.Updated = time.Now().UTC()
		if err := keys.DeleteBucket([]byte(key)); err != nil {
			return err
		}
		if err := writeSnapshot(keys, id, info); err != nil {
			return err
		}
		if info.Parent != "" {
			children := keys.Bucket([]byte(info.Parent)).Bucket(bucketChildren)
			if err := children.Delete([]byte(key)); err != nil {
				return err
			}
			if err := children.Put([]byte(name), nil); err != nil {
				return err
			}
		}
		if err := ids.Put([]byte(id), []byte(name)); err != nil {
			return err
		}
		snap, err = chain(keys, name)
		return err
	})
	return snap, err
}

// Remove deletes key's record and returns what it was, so that the driver
// can then discard its directory. Removing a parent fails.
func (s *MetaStore) Remove(ctx context.Context, key string) (Snapshot, error) {
	var snap Snapshot
	err := s.update(ctx, func(keys, ids *bbolt.Bucket) error {
		b, err := snapshotBucket(keys, key)
		if err != nil {
			return err
		}
		if k, _ := b.Bucket(bucketChildren).Cursor().First(); k != nil {
			return fmt.Errorf("remove snapshot %q: child %q depends on it: %w", key, k, errdefs.ErrFailedPrecondition)
		}
		snap, err = chain(keys, key)
		if err != nil {
			return err
		}
		if parent := b.Get(fieldParent); parent != nil {
			if err := keys.Bucket(parent).Bucket(bucketChildren).Delete([]byte(key)); err != nil {
				return err
			}
		}
		if err := ids.Delete([]byte(snap.ID)); err != nil {
			return err
		}
		return keys.DeleteBucket([]byte(key))
	})
	return snap, err
}

// Walk calls fn for every snapshot. fn runs outside the transaction, so it
// may call back into the store.
func (s *MetaStore) Walk(ctx context.Context, fn snapshot.WalkFunc) error {
	var infos []snapshot.Info
	err := s.view(ctx, func(keys, _ *bbolt.Bucket) error {
		return keys.ForEachBucket(func(k []byte) error {
			info, err := readInfo(string(k), keys.Bucket(k))
			infos = append(infos, info)
			return err
		})
	})
	if err != nil {
		return err
	}
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

// IDs returns the directory id of every recorded snapshot, mapped to its key.
func (s *MetaStore) IDs(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := s.view(ctx, func(_, ids *bbolt.Bucket) error {
		return ids.ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, err
}

func checkCreate(keys *bbolt.Bucket, key, parent string) error {
	if key == "" {
		return fmt.Errorf("snapshot key is empty: %w", errdefs.ErrInvalidArgument)
	}
	if keys.Bucket([]byte(key)) != nil {
		return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent == "" {
		return nil
	}
	pb, err := snapshotBucket(keys, parent)
	if err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	if k := snapshot.Kind(kindOf(pb)); k != snapshot.KindCommitted {
		return fmt.Errorf("parent snapshot %q is %s, not committed: %w", parent, k, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func snapshotBucket(keys *bbolt.Bucket, key string) (*bbolt.Bucket, error) {
	b := keys.Bucket([]byte(key))
	if b == nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return b, nil
}

func kindOf(b *bbolt.Bucket) byte {
	if v := b.Get(fieldKind); len(v) == 1 {
		return v[0]
	}
	return byte(snapshot.KindUnknown)
}

// chain follows parent links from key down to the base layer.
func chain(keys *bbolt.Bucket, key string) (Snapshot, error) {
	b, err := snapshotBucket(keys, key)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{ID: string(b.Get(fieldID)), Kind: snapshot.Kind(kindOf(b))}
	for parent := b.Get(fieldParent); parent != nil; parent = b.Get(fieldParent) {
		if b = keys.Bucket(parent); b == nil {
			return Snapshot{}, fmt.Errorf("snapshot %q: parent %q missing from metadata: %w", key, parent, errdefs.ErrNotFound)
		}
		snap.ParentIDs = append(snap.ParentIDs, string(b.Get(fieldID)))
	}
	return snap, nil
}

func writeSnapshot(keys *bbolt.Bucket, id string, info snapshot.Info) error {
	b, err := keys.CreateBucket([]byte(info.Name))
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", info.Name, err)
	}
	created, err := info.Created.MarshalBinary()
	if err != nil {
		return err
	}
	updated, err := info.Updated.MarshalBinary()
	if err != nil {
		return err
	}
	fields := [][2][]byte{
		{fieldID, []byte(id)},
		{fieldKind, {byte(info.Kind)}},
		{fieldCreated, created},
		{fieldUpdated, updated},
	}
	if info.Parent != "" {
		fields = append(fields, [2][]byte{fieldParent, []byte(info.Parent)})
	}
	for _, f := range fields {
		if err := b.Put(f[0], f[1]); err != nil {
			return err
		}
	}
	if _, err := b.CreateBucket(bucketChildren); err != nil {
		return err
	}
	labels, err := b.CreateBucket(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range info.Labels {
		if err := labels.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func readInfo(key string, b *bbolt.Bucket) (snapshot.Info, error) {
	info := snapshot.Info{
		Kind:   snapshot.Kind(kindOf(b)),
		Name:   key,
		Parent: string(b.Get(fieldParent)),
	}
	if err := info.Created.UnmarshalBinary(b.Get(fieldCreated)); err != nil {
		return info, fmt.Errorf("snapshot %q: created time: %w", key, err)
	}
	if err := info.Updated.UnmarshalBinary(b.Get(fieldUpdated)); err != nil {
		return info, fmt.Errorf("snapshot %q: updated time: %w", key, err)
	}
	labels := map[string]string{}
	if lb := b.Bucket(bucketLabels); lb != nil {
		_ = lb.ForEach(func(k, v []byte) error {
			labels[string(k)] = string(v)
			return nil
		})
	}
	if len(labels) > 0 {
		info.Labels = labels
	}
	return info, nil
}
