package server

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
	"berth/registry/storage/fs"
)

// plainDriver hides the fs driver's Create, as a driver without
// conditional writes would be.
type plainDriver struct{ storage.Driver }

// TestGCLockOneHolder: collectors on several replicas asking for the lease
// at once, with a fresh storage or over a dead collector's expired lease:
// exactly one holds it, the others are told it is taken.
func TestGCLockOneHolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		expired bool
	}{{"fresh", false}, {"takeover", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := fs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			st := store{d: d}
			if tc.expired {
				if err := st.putJSON(t.Context(), gcLeaseDir+"/"+genName(7), leaseRecord{Owner: "dead", Expires: time.Now().Add(-time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won []string
			for i := range 8 {
				wg.Go(func() {
					owner := fmt.Sprintf("c%d", i)
					_, _, err := takeGCLock(t.Context(), st, owner)
					switch {
					case err == nil:
						mu.Lock()
						won = append(won, owner)
						mu.Unlock()
					case !errors.Is(err, errdefs.ErrConflict):
						t.Errorf("%s: %v", owner, err)
					}
				})
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("holders: %v", won)
			}
			if _, rec, err := topLease(t.Context(), st, gcLeaseDir); err != nil || rec.Owner != won[0] {
				t.Fatalf("stored lease %+v, %v; holder %s", rec, err, won[0])
			}
			// The holder asking again (a create retried after a lost
			// response) still holds it.
			if _, _, err := takeGCLock(t.Context(), st, won[0]); err != nil {
				t.Fatalf("holder again: %v", err)
			}
		})
	}
}

// TestGCNeedsConditionalCreates: a storage without them is refused rather
// than collected by two processes at once.
func TestGCNeedsConditionalCreates(t *testing.T) {
	t.Parallel()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(t.Context(), plainDriver{d}, GCOptions{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("collect over a driver without Create: %v", err)
	}
}
