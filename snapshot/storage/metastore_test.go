package storage

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"berth/errdefs"
	"berth/snapshot"
)

func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newStore(t *testing.T, db *bbolt.DB, driver string) *MetaStore {
	t.Helper()
	s, err := NewMetaStore(db, driver)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMetaStoreLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, filepath.Join(t.TempDir(), "db")), "test")
	if _, err := s.Create(ctx, "id1", "a1", "", snapshot.KindActive, snapshot.WithLabels(map[string]string{"l": "1"})); err != nil {
		t.Fatal(err)
	}
	c1, err := s.Commit(ctx, "c1", "a1", snapshot.WithLabels(map[string]string{"m": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID != "id1" || c1.Kind != snapshot.KindCommitted {
		t.Fatalf("Commit = %+v", c1)
	}
	info, err := s.Stat(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels["l"] != "1" || info.Labels["m"] != "2" || info.Parent != "" || info.Created.IsZero() {
		t.Fatalf("Stat(c1) = %+v", info)
	}
	if _, err := s.Create(ctx, "id2", "a2", "c1", snapshot.KindActive); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, "c2", "a2"); err != nil {
		t.Fatal(err)
	}
	v, err := s.Create(ctx, "id3", "v3", "c2", snapshot.KindView)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.ParentIDs, []string{"id2", "id1"}) {
		t.Fatalf("ParentIDs = %v, want nearest first", v.ParentIDs)
	}

	errTests := []struct {
		name string
		err  error
		want error
	}{
		{"stat unknown", ignore(s.Stat(ctx, "nope")), errdefs.ErrNotFound},
		{"duplicate key", ignore(s.Create(ctx, "id4", "c1", "", snapshot.KindActive)), errdefs.ErrAlreadyExists},
		{"duplicate id", ignore(s.Create(ctx, "id1", "x", "", snapshot.KindActive)), errdefs.ErrAlreadyExists},
		{"unknown parent", ignore(s.Create(ctx, "id5", "x", "nope", snapshot.KindActive)), errdefs.ErrNotFound},
		{"view as parent", ignore(s.Create(ctx, "id6", "x", "v3", snapshot.KindActive)), errdefs.ErrFailedPrecondition},
		{"commit view", ignore(s.Commit(ctx, "x", "v3")), errdefs.ErrFailedPrecondition},
		{"remove parent", ignore(s.Remove(ctx, "c2")), errdefs.ErrFailedPrecondition},
		{"empty key", s.Check(ctx, "", ""), errdefs.ErrInvalidArgument},
	}
	for _, tt := range errTests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}

	for _, key := range []string{"v3", "c2", "c1"} {
		if _, err := s.Remove(ctx, key); err != nil {
			t.Fatalf("Remove(%s): %v", key, err)
		}
	}
	ids, err := s.IDs(ctx)
	if err != nil || len(ids) != 0 {
		t.Fatalf("IDs after removing all = %v, %v", ids, err)
	}
}

func ignore[T any](_ T, err error) error { return err }

func TestMetaStoreDriversAreSeparateAndDurable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db := openDB(t, path)
	a, b := newStore(t, db, "a"), newStore(t, db, "b")
	if _, err := a.Create(ctx, "id", "k", "", snapshot.KindActive); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("driver b sees driver a's snapshot: %v", err)
	}
	if _, err := b.Create(ctx, "id", "k", "", snapshot.KindView); err != nil {
		t.Fatalf("same key in another driver: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	a = newStore(t, openDB(t, path), "a")
	var seen []string
	err := a.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		seen = append(seen, info.Name+"/"+info.Kind.String())
		return nil
	})
	if err != nil || !slices.Equal(seen, []string{"k/active"}) {
		t.Fatalf("Walk after reopen = %v, %v", seen, err)
	}
}
