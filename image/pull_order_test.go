package image

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"berth/archive"
)

// TestDownloadsInLayerOrder checks that download slots go to layers
// bottom up: with one slot, the blobs are fetched in manifest order.
func TestDownloadsInLayerOrder(t *testing.T) {
	reg := newTestRegistry(t)
	var layers []testLayer
	for i := range 5 {
		layers = append(layers, testLayer{files: map[string]string{itoa(int64(i)): "x"}, random: 64 << 10, comp: archive.Gzip})
	}
	img := pushTestImage(t, reg.host+"/berth-test/order:v1", layers, true, false)
	var mu sync.Mutex
	var fetched []string
	reg.setFault(func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.HasSuffix(r.URL.Path, img.config.String()) {
			mu.Lock()
			fetched = append(fetched, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			mu.Unlock()
		}
		return w, false
	})
	s := newPullService(t, drivers[1], newRemote())
	s.dist = newDistribution(newRemote(), 1, 5)
	if err := s.PullImage(context.Background(), img.ref.String(), PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range img.blobs {
		want = append(want, b.Digest.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(fetched, want) {
		t.Errorf("blobs fetched in the order %v, want the layer order %v", fetched, want)
	}
}
