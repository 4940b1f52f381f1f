package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The registry floors: what loopback HTTP on this machine allows for the
// requests of registry/bench, answered by a server that keeps nothing
// (bodies from and to memory), so that the report can say how close each
// registry is to them. The workload names are the ones the report gives
// registry/bench's results (bench/report, known), and the runs are shaped
// like them: five runs of one second each, 16 MiB blobs, one client for
// blobs and GOMAXPROCS clients for manifests.
const (
	floorBlobSize = 16 << 20
	floorRounds   = 5
	floorRunTime  = time.Second
)

// BenchmarkRegistryFloor measures the floors of the registry workloads:
// an upload (POST, then PUT of the blob, its sha256 checked as any
// registry must), a download of the blob and a manifest GET.
func BenchmarkRegistryFloor(b *testing.B) {
	blob := make([]byte, floorBlobSize)
	rand.NewChaCha8([32]byte{'f'}).Read(blob)
	sum := sha256.Sum256(blob)
	want := "sha256:" + hex.EncodeToString(sum[:])
	manifest := bytes.Repeat([]byte{'m'}, 215) // the size of registry/bench's manifest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/upload/1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil || "sha256:"+hex.EncodeToString(h.Sum(nil)) != r.URL.Query().Get("digest") {
				http.Error(w, "digest", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
		case r.URL.Path == "/blob":
			w.Header().Set("Content-Length", "16777216")
			w.Write(blob)
		default:
			w.Write(manifest)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: runtime.GOMAXPROCS(0)}}
	upload := func() int64 {
		res := floorDo(b, client, http.MethodPost, srv.URL+"/upload/", nil, http.StatusAccepted)
		if res == nil {
			return 0
		}
		floorDo(b, client, http.MethodPut, srv.URL+res.Header.Get("Location")+"?digest="+want, blob, http.StatusCreated)
		return floorBlobSize
	}
	download := func() int64 {
		floorDo(b, client, http.MethodGet, srv.URL+"/blob", nil, http.StatusOK)
		return floorBlobSize
	}
	get := func() int64 {
		floorDo(b, client, http.MethodGet, srv.URL+"/manifest", nil, http.StatusOK)
		return 1
	}
	for range b.N {
		for _, f := range []struct {
			workload, system, unit string
			clients                int
			op                     func() int64
		}{
			{"registry: blob upload, 16 MiB (POST + PUT)", "loopback HTTP, sha256 of the body", "MB/s", 1, upload},
			{"registry: blob download, 16 MiB GET", "loopback HTTP from memory", "MB/s", 1, download},
			{"registry: manifest GET, GOMAXPROCS clients", "loopback HTTP from memory", "req/s", runtime.GOMAXPROCS(0), get},
		} {
			r := Result{Workload: f.workload, System: f.system, Unit: f.unit, Floor: true}
			for range floorRounds {
				v := rate(f.clients, f.op)
				if f.unit == "MB/s" {
					v /= 1e6 // as Go's benchmarks count MB/s
				}
				r.Runs = append(r.Runs, v)
			}
			record(b, r)
		}
	}
}

// rate runs op on clients goroutines for floorRunTime and returns what the
// calls returned, summed, per second.
func rate(clients int, op func() int64) float64 {
	var total atomic.Int64
	start := time.Now()
	deadline := start.Add(floorRunTime)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				total.Add(op())
			}
		})
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// floorDo sends one request, drains the answer and fails b unless the
// status is want.
func floorDo(b *testing.B, client *http.Client, method, url string, body []byte, want int) *http.Response {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.Error(err)
		return nil
	}
	res, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return nil
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Errorf("%s %s: %s", method, url, res.Status)
	}
	return res
}
