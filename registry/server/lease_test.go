package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
	"berth/registry/storage/fs"
)

func leaseStore(t *testing.T) (store, storage.Creator) {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return store{d: d}, d
}

// TestLeaseOneHolder: many takers at once over an expired lease; exactly
// one holds it, and the lease shows that one.
func TestLeaseOneHolder(t *testing.T) {
	t.Parallel()
	st, c := leaseStore(t)
	ctx := t.Context()
	if err := st.putJSON(ctx, "l/"+genName(3), leaseRecord{Owner: "dead", Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var won []*heldLease
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			l, err := takeLease(ctx, st, c, "l", fmt.Sprint("p", i), time.Minute)
			if err != nil && !errors.Is(err, errdefs.ErrConflict) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				won = append(won, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d holders", len(won))
	}
	if _, rec, err := topLease(ctx, st, "l"); err != nil || rec.Owner != won[0].owner {
		t.Fatalf("lease shows %+v, %v; holder %s", rec, err, won[0].owner)
	}
}

// staleReader is a store whose first listing of the lease is the one a
// slow process made before the lease changed hands.
type staleReader struct {
	storage.Driver
	mu    sync.Mutex
	stale []string
}

func (s *staleReader) List(ctx context.Context, p string) ([]string, error) {
	s.mu.Lock()
	stale := s.stale
	s.stale = nil
	s.mu.Unlock()
	if stale != nil {
		return stale, nil
	}
	return s.Driver.List(ctx, p)
}

func (s *staleReader) Create(ctx context.Context, p string, b []byte) error {
	return s.Driver.(storage.Creator).Create(ctx, p, b)
}

// TestLeaseStaleTaker: a process that saw an expired generation acts only
// after another has taken the lease over (and cleaned up the generation it
// saw); it must not take the lease too. This is the race the settle delay
// of a delete-and-create lock could not close.
func TestLeaseStaleTaker(t *testing.T) {
	t.Parallel()
	st, c := leaseStore(t)
	ctx := t.Context()
	if err := st.putJSON(ctx, "l/"+genName(1), leaseRecord{Owner: "dead", Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	stale, err := st.d.List(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	// The holder after the dead one, and a second takeover after it
	// expired: generations 2 and 3, the older ones cleaned.
	a, err := takeLease(ctx, st, c, "l", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.putJSON(ctx, a.path(), leaseRecord{Owner: "a", Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	b, err := takeLease(ctx, st, c, "l", "b", time.Minute)
	if err != nil || b.gen != 3 {
		t.Fatalf("takeover: %+v, %v", b, err)
	}
	if names, _ := st.d.List(ctx, "l"); len(names) != 1 {
		t.Fatalf("older generations kept: %v", names)
	}
	// The stale process lists generation 1 (since cleaned) and creates a
	// generation below the holder's: it must see 3 and give up.
	sr := &staleReader{Driver: st.d, stale: stale}
	if _, err := takeLease(ctx, store{d: sr}, sr, "l", "late", time.Minute); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stale taker: %v", err)
	}
	if _, rec, _ := topLease(ctx, st, "l"); rec.Owner != "b" {
		t.Fatalf("lease shows %+v, want b", rec)
	}
	if err := b.renew(ctx); err != nil {
		t.Fatalf("holder renews: %v", err)
	}
	// The superseded holder can neither renew nor release someone else's.
	if err := a.renew(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("superseded renew: %v", err)
	}
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, rec, _ := topLease(ctx, st, "l"); rec.Owner != "b" || !time.Now().Before(rec.Expires) {
		t.Fatalf("a superseded release touched the lease: %+v", rec)
	}
	// Released, the next taker gets a higher generation at once.
	if err := b.release(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := takeLease(ctx, st, c, "l", "next", time.Minute)
	if err != nil || n.gen != 4 {
		t.Fatalf("after release: %+v, %v", n, err)
	}
}
