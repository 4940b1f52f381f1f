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
// at once, with a fresh storage or over a dead collector's expired lease,
// with and without conditional creates: exactly one holds it, the others
// are told it is taken.
func TestGCLockOneHolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		plain   bool
		expired bool
	}{
		{"create", false, false},
		{"create-takeover", false, true},
		{"put", true, false},
		{"put-takeover", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := fs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			st := store{d: d}
			if tc.plain {
				st.d = plainDriver{d}
			}
			if tc.expired {
				dead := gcLockPath
				if !tc.plain {
					dead = gcLeaseDir + "/" + genName(7)
				}
				if err := st.putJSON(t.Context(), dead, gcLock{Owner: "dead", Expires: time.Now().Add(-time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won []string
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					owner := fmt.Sprintf("c%d", i)
					_, _, err := takeGCLock(t.Context(), st, owner, 300*time.Millisecond)
					switch {
					case err == nil:
						mu.Lock()
						won = append(won, owner)
						mu.Unlock()
					case !errors.Is(err, errdefs.ErrConflict):
						t.Errorf("%s: %v", owner, err)
					}
				}()
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("holders: %v", won)
			}
			owner := func() string {
				if tc.plain {
					l, err := readLock(t.Context(), st)
					if err != nil {
						t.Fatal(err)
					}
					return l.Owner
				}
				_, rec, err := topLease(t.Context(), st, gcLeaseDir)
				if err != nil {
					t.Fatal(err)
				}
				return rec.Owner
			}
			if got := owner(); got != won[0] {
				t.Fatalf("stored lease of %q; holder %s", got, won[0])
			}
			// The holder asking again (a create retried after a lost
			// response) still holds it.
			if _, _, err := takeGCLock(t.Context(), st, won[0], time.Millisecond); err != nil {
				t.Fatalf("holder again: %v", err)
			}
		})
	}
}
