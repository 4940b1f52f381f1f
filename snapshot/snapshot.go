// Package snapshot defines how berth stores layers and container filesystems.
//
// A snapshot is a directory tree identified by a key. Its lifecycle:
//
//	Prepare(key, parent) -> an Active snapshot: writable, mounts returned as data
//	View(key, parent)    -> a View: read-only mounts of parent, removed when done
//	Commit(name, key)    -> the Active snapshot becomes Committed under name;
//	                        key is gone. Committed snapshots are immutable and
//	                        may be parents.
//	Remove(key)          -> removes a snapshot that has no children.
//
// Image layers are committed snapshots keyed by their chain ID; a container's
// writable layer is an Active snapshot whose parent is the image's top chain
// ID. Snapshotters never mount on behalf of the caller: Prepare, View and
// Mounts return []mount.Mount and the caller mounts them (mount.All).
//
// Implementations: snapshot/overlay (overlay2), snapshot/vfs, snapshot/btrfs.
// All pass snapshot/snapshottest.
package snapshot

import (
	"context"
	"time"

	"berth/mount"
)

// Kind is the state of a snapshot.
type Kind int

// The kinds of snapshot.
const (
	KindUnknown Kind = iota
	KindView
	KindActive
	KindCommitted
)

func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Kind    Kind
	Name    string // the key, or the committed name
	Parent  string // "" for a base layer
	Labels  map[string]string
	Created time.Time
	Updated time.Time
}

// Usage is the disk a snapshot itself uses, not counting its parents.
type Usage struct {
	Size   int64 // bytes
	Inodes int64
}

// Opt sets optional properties on Prepare, View and Commit.
type Opt func(*Info)

// WithLabels attaches labels to the snapshot.
func WithLabels(labels map[string]string) Opt {
	return func(i *Info) {
		if i.Labels == nil {
			i.Labels = map[string]string{}
		}
		for k, v := range labels {
			i.Labels[k] = v
		}
	}
}

// WalkFunc is called for each snapshot by Walk.
type WalkFunc func(context.Context, Info) error

// Snapshotter stores snapshots. All methods are safe for concurrent use.
// Errors wrap errdefs kinds: ErrNotFound for an unknown key, ErrAlreadyExists
// for a key or name in use, ErrFailedPrecondition for removing a snapshot
// with children or committing a View.
type Snapshotter interface {
	Stat(ctx context.Context, key string) (Info, error)
	Usage(ctx context.Context, key string) (Usage, error)
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	View(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	Commit(ctx context.Context, name, key string, opts ...Opt) error
	Remove(ctx context.Context, key string) error
	Walk(ctx context.Context, fn WalkFunc) error
	Close() error
}

// Status is what `info` reports about a driver: a name and ordered details
// such as "Backing Filesystem" and "Supports d_type".
type Status struct {
	Driver  string
	Details [][2]string
}

// Describer is implemented by snapshotters that can describe themselves for
// `info`.
type Describer interface {
	Status(ctx context.Context) Status
}
