package image

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/archive"
	"berth/content"
	"berth/errdefs"
	"berth/remote/credentials"
	"berth/snapshot"

	"github.com/opencontainers/go-digest"
)

func TestPullFormats(t *testing.T) {
	reg := newTestRegistry(t)
	base := testLayer{files: map[string]string{"etc/": "", "etc/os-release": "berth test\n"}}
	top := testLayer{files: map[string]string{"hello.txt": "hello from the top layer\n"}}
	cases := []struct {
		name   string
		comp   archive.Compression
		docker bool
		index  bool
	}{
		{"docker-schema2-gzip", archive.Gzip, true, false},
		{"docker-manifest-list", archive.Gzip, true, true},
		{"oci-gzip", archive.Gzip, false, false},
		{"oci-zstd", archive.Zstd, false, false},
		{"oci-uncompressed", archive.Uncompressed, false, false},
		{"oci-index", archive.Zstd, false, true},
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := newPullService(t, d, newRemote())
			for _, tc := range cases {
				b, tp := base, top
				b.comp, tp.comp = tc.comp, tc.comp
				repo := "berth-test/" + d.name + "-" + tc.name
				img := pushTestImage(t, reg.host+"/"+repo+":v1", []testLayer{b, tp}, tc.docker, tc.index)
				var rec recorder
				if err := s.PullImage(context.Background(), img.ref.String(), PullOptions{}, rec.add); err != nil {
					t.Fatalf("%s: pull: %v", tc.name, err)
				}
				if !rec.has("v1: Pulling from "+repo) || !rec.has("Digest: "+img.manifest.String()) ||
					!rec.has("Status: Downloaded newer image for "+img.ref.String()) {
					t.Errorf("%s: output:\n%s", tc.name, strings.Join(rec.lines(), "\n"))
				}
				ins, err := s.ImageInspect(context.Background(), img.ref.String())
				if err != nil {
					t.Fatal(err)
				}
				wantDigest := reg.host + "/" + repo + "@" + img.manifest.String()
				if ins.ID != img.config.String() || !slices.Equal(ins.RepoDigests, []string{wantDigest}) {
					t.Errorf("%s: id %s digests %v, want %s %s", tc.name, ins.ID, ins.RepoDigests, img.config, wantDigest)
				}
				if got := pulledFile(t, s, img.ref.String(), "hello.txt"); got != "hello from the top layer\n" {
					t.Errorf("%s: hello.txt = %q", tc.name, got)
				}
				if got := pulledFile(t, s, img.ref.String(), "etc/os-release"); got != "berth test\n" {
					t.Errorf("%s: os-release = %q", tc.name, got)
				}
			}
			assertNoIngests(t, s)
		})
	}
}

func assertNoIngests(t *testing.T, s *Service) {
	t.Helper()
	// Nothing of the transfers stays behind once a pull succeeded: only
	// the uncompressed tars and configs are blobs.
	s.content.Walk(context.Background(), func(info content.Info) error {
		st, _ := s.view()
		for _, l := range st.layers {
			if l.Blob == info.Digest {
				return nil
			}
		}
		if _, ok := st.images[info.Digest]; !ok {
			t.Errorf("stray blob %s (%d bytes)", info.Digest, info.Size)
		}
		return nil
	})
}

func TestPullUpToDateAndSharedLayers(t *testing.T) {
	reg := newTestRegistry(t)
	base := testLayer{files: map[string]string{"base.txt": "base\n"}, comp: archive.Gzip}
	a := pushTestImage(t, reg.host+"/berth-test/a:v1", []testLayer{base, {files: map[string]string{"a": "a"}, comp: archive.Gzip}}, true, false)
	b := pushTestImage(t, reg.host+"/berth-test/b:v1", []testLayer{base, {files: map[string]string{"b": "b"}, comp: archive.Gzip}}, true, false)
	forEachDriver(t, func(t *testing.T, s *Service) {
		s.dist = newDistribution(newRemote(), 3, 5)
		ctx := context.Background()
		if err := s.PullImage(ctx, a.ref.String(), PullOptions{}, nil); err != nil {
			t.Fatal(err)
		}
		var rec recorder
		if err := s.PullImage(ctx, a.ref.String(), PullOptions{}, rec.add); err != nil {
			t.Fatal(err)
		}
		if !rec.has("Status: Image is up to date for "+a.ref.String()) || !rec.has(shortID(a.blobs[1].Digest)+": Already exists") {
			t.Errorf("second pull:\n%s", strings.Join(rec.lines(), "\n"))
		}
		rec = recorder{}
		if err := s.PullImage(ctx, b.ref.String(), PullOptions{}, rec.add); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"v1: Pulling from berth-test/b",
			shortID(b.blobs[0].Digest) + ": Already exists",
			shortID(b.blobs[1].Digest) + ": Pulling fs layer",
			shortID(b.blobs[1].Digest) + ": Verifying Checksum",
			shortID(b.blobs[1].Digest) + ": Download complete",
			shortID(b.blobs[1].Digest) + ": Pull complete",
			"Digest: " + b.manifest.String(),
			"Status: Downloaded newer image for " + b.ref.String(),
		}
		if got := rec.lines(); !slices.Equal(got, want) {
			t.Errorf("pull sharing a base layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// By digest: the same image, recorded once more under its digest.
		byDigest := reg.host + "/berth-test/b@" + b.manifest.String()
		rec = recorder{}
		if err := s.PullImage(ctx, byDigest, PullOptions{}, rec.add); err != nil {
			t.Fatal(err)
		}
		if !rec.has("Status: Image is up to date for " + byDigest) {
			t.Errorf("pull by digest:\n%s", strings.Join(rec.lines(), "\n"))
		}
	})
}

func TestPullBadInput(t *testing.T) {
	reg := newTestRegistry(t)
	layer := testLayer{files: map[string]string{"x": "x"}, random: 256 << 10, comp: archive.Gzip}
	good := pushTestImage(t, reg.host+"/berth-test/bad:v1", []testLayer{layer}, true, false)
	s := newPullService(t, drivers[1], newRemote())
	ctx := context.Background()
	cases := []struct {
		name    string
		ref     string
		fault   func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool)
		kind    func(error) bool
		want    string
		partial bool // the download stays resumable
	}{
		{name: "unknown tag", ref: reg.host + "/berth-test/bad:nosuch", kind: errdefs.NotFound,
			want: "manifest for " + reg.host + "/berth-test/bad:nosuch not found: manifest unknown: "},
		{name: "unknown repository", ref: reg.host + "/berth-test/nosuch:v1", kind: errdefs.NotFound, want: "not found"},
		{name: "bad reference", ref: reg.host + "/berth-test/UPPER:v1", kind: errdefs.InvalidArgument, want: "invalid reference format"},
		{name: "layer digest mismatch", ref: good.ref.String(), kind: errdefs.InvalidArgument, want: "does not match",
			fault: onBlob(good.blobs[0].Digest, func(w http.ResponseWriter) (http.ResponseWriter, bool) {
				return &flipWriter{ResponseWriter: w, at: 1000}, false
			})},
		{name: "truncated layer", ref: good.ref.String(), kind: func(err error) bool {
			return errors.Is(err, errdefs.ErrUnavailable) || strings.Contains(err.Error(), "unexpected EOF")
		},
			want: good.blobs[0].Digest.String(), partial: true,
			fault: truncate(good.blobs[0].Digest, 100<<10)},
	}
	for _, tc := range cases {
		reg.setFault(tc.fault)
		err := s.PullImage(ctx, tc.ref, PullOptions{}, nil)
		reg.setFault(nil)
		if err == nil || !tc.kind(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if imgs, _ := s.Images(ctx, ListOptions{All: true}); len(imgs) != 0 {
			t.Errorf("%s: images visible after a failed pull: %+v", tc.name, imgs)
		}
		_, serr := s.content.Status(ctx, ingestRef(good.blobs[0].Digest))
		if tc.partial != (serr == nil) {
			t.Errorf("%s: partial download kept = %v, want %v", tc.name, serr == nil, tc.partial)
		}
		s.content.Abort(ctx, ingestRef(good.blobs[0].Digest))
		s.sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
			t.Errorf("%s: snapshot left: %+v", tc.name, info)
			return nil
		})
	}
	assertNoImages(t, s)
}

// onBlob applies f to the GET requests of blob d.
func onBlob(d digest.Digest, f func(http.ResponseWriter) (http.ResponseWriter, bool)) func(http.ResponseWriter, *http.Request) (http.ResponseWriter, bool) {
	return func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			return f(w)
		}
		return w, false
	}
}

// truncate makes blob d end after n bytes: longer reads are cut there,
// and reads from n on fail.
func truncate(d digest.Digest, n int64) func(http.ResponseWriter, *http.Request) (http.ResponseWriter, bool) {
	return func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			return w, false
		}
		var start int64
		if rg, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
			start, _ = strconv.ParseInt(strings.TrimSuffix(rg, "-"), 10, 64)
		}
		if start >= n {
			http.Error(w, "truncated", http.StatusInternalServerError)
			return w, true
		}
		return &cutWriter{ResponseWriter: w, n: n - start}, false
	}
}

// flipWriter corrupts one byte of the body at offset at.
type flipWriter struct {
	http.ResponseWriter
	at, n int64
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.n && f.at < f.n+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[f.at-f.n] ^= 0xff
		p = q
	}
	f.n += int64(len(p))
	return f.ResponseWriter.Write(p)
}

func TestPullResumes(t *testing.T) {
	reg := newTestRegistry(t)
	layer := testLayer{files: map[string]string{"x": "x"}, random: 2 << 20, comp: archive.Gzip}
	img := pushTestImage(t, reg.host+"/berth-test/resume:v1", []testLayer{layer}, false, false)
	blob := img.blobs[0].Digest
	s := newPullService(t, drivers[1], newRemote())
	ctx := context.Background()

	// A connection cut in the middle of the layer: the client resumes
	// with a Range request within the same pull.
	cut := true
	var mu sync.Mutex
	reg.setFault(onBlob(blob, func(w http.ResponseWriter) (http.ResponseWriter, bool) {
		mu.Lock()
		defer mu.Unlock()
		if cut {
			cut = false
			return &cutWriter{ResponseWriter: w, n: 700 << 10}, false
		}
		return w, false
	}))
	if err := s.PullImage(ctx, img.ref.String(), PullOptions{}, nil); err != nil {
		t.Fatalf("pull through a cut connection: %v", err)
	}
	if r := reg.rangeHeaders(); len(r) != 1 || r[0] != "bytes=716800-" {
		t.Fatalf("range requests after the cut: %q", r)
	}
	if _, err := s.ImageDelete(ctx, img.ref.String(), DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// A pull that fails for good (every attempt is cut) keeps what it
	// got; the retried pull asks only for the rest.
	reg.setFault(truncate(blob, 300<<10))
	if err := s.PullImage(ctx, img.ref.String(), PullOptions{}, nil); err == nil {
		t.Fatal("pull of a truncated blob succeeded")
	}
	st, err := s.content.Status(ctx, ingestRef(blob))
	if err != nil || st.Offset != 300<<10 {
		t.Fatalf("partial download: %+v %v", st, err)
	}
	reg.setFault(nil)
	before := len(reg.rangeHeaders())
	if err := s.PullImage(ctx, img.ref.String(), PullOptions{}, nil); err != nil {
		t.Fatalf("retried pull: %v", err)
	}
	r := reg.rangeHeaders()[before:]
	if len(r) != 1 || r[0] != "bytes="+itoa(st.Offset)+"-" {
		t.Fatalf("retried pull asked for %q, want the bytes from %d", r, st.Offset)
	}
	if got := pulledFile(t, s, img.ref.String(), "x"); got != "x" {
		t.Fatalf("x = %q", got)
	}
	assertNoIngests(t, s)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestConcurrentPullsShareWork(t *testing.T) {
	reg := newTestRegistry(t)
	layers := []testLayer{
		{files: map[string]string{"1": "1"}, random: 1 << 20, comp: archive.Gzip},
		{files: map[string]string{"2": "2"}, random: 1 << 20, comp: archive.Gzip},
		{files: map[string]string{"3": "3"}, random: 1 << 20, comp: archive.Gzip},
	}
	img := pushTestImage(t, reg.host+"/berth-test/shared:v1", layers, true, false)
	t.Run("pulls", func(t *testing.T) {
		forEachDriver(t, func(t *testing.T, s *Service) {
			s.dist = newDistribution(newRemote(), 3, 5)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.PullImage(context.Background(), img.ref.String(), PullOptions{}, nil)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := pulledFile(t, s, img.ref.String(), "3"); got != "3" {
				t.Fatalf("3 = %q", got)
			}
		})
	})
	for _, b := range img.blobs {
		// Once per driver: the two services are separate daemons.
		if n := reg.gets(b.Digest); n != len(drivers) {
			t.Errorf("blob %s fetched %d times by %d daemons", shortID(b.Digest), n, len(drivers))
		}
	}
}

func TestDownloadConcurrencyLimit(t *testing.T) {
	reg := newTestRegistry(t)
	var layers []testLayer
	for i := 0; i < 4; i++ {
		layers = append(layers, testLayer{files: map[string]string{itoa(int64(i)): "x"}, random: 256 << 10, comp: archive.Gzip})
	}
	img := pushTestImage(t, reg.host+"/berth-test/limit:v1", layers, true, false)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	reg.setFault(func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || strings.HasSuffix(r.URL.Path, img.config.String()) {
			return w, false
		}
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // long enough for the others to start, if allowed
		mu.Lock()
		inFlight--
		mu.Unlock()
		return w, false
	})
	for _, limit := range []int{1, 3} {
		s := newPullService(t, drivers[1], newRemote())
		s.dist = newDistribution(newRemote(), limit, 5)
		mu.Lock()
		peak = 0
		mu.Unlock()
		if err := s.PullImage(context.Background(), img.ref.String(), PullOptions{}, nil); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := peak
		mu.Unlock()
		if got > limit || (limit > 1 && got < 2) {
			t.Errorf("max-concurrent-downloads %d: %d downloads at once", limit, got)
		}
	}
}

func TestDistributionInspect(t *testing.T) {
	reg := newTestRegistry(t)
	layers := []testLayer{{files: map[string]string{"a": "a"}, comp: archive.Gzip}}
	single := pushTestImage(t, reg.host+"/berth-test/inspect:single", layers, true, false)
	multi := pushTestImage(t, reg.host+"/berth-test/inspect:multi", layers, false, true)
	s := newPullService(t, drivers[1], newRemote())
	ctx := context.Background()
	di, err := s.DistributionInspect(ctx, single.ref.String(), credentials.AuthConfig{})
	if err != nil || di.Descriptor.Digest != single.manifest || len(di.Platforms) != 1 || di.Platforms[0].Architecture != runtime.GOARCH {
		t.Fatalf("single: %+v %v", di, err)
	}
	di, err = s.DistributionInspect(ctx, multi.ref.String(), credentials.AuthConfig{})
	if err != nil || di.Descriptor.Digest != multi.manifest || len(di.Platforms) != 2 {
		t.Fatalf("index: %+v %v", di, err)
	}
	if _, err := s.DistributionInspect(ctx, reg.host+"/berth-test/inspect:nope", credentials.AuthConfig{}); !errdefs.NotFound(err) {
		t.Fatalf("unknown tag: %v", err)
	}
}
