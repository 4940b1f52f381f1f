package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/remote"
)

// BenchmarkRegistryPullPush times `berth pull` and `berth push` (whole CLI
// processes, as PEERS.md timed docker) of two 6-layer images of about
// 392 MB against the CNCF registry on loopback. The base layer (116 MB of
// /usr/lib/x86_64-linux-gnu) is present before each pull, as in the peers'
// B5 run; the five others are pulled:
//
//	multi  19 MB of /usr/share (2440 files), 50 MB random, 100 MB random,
//	       100 MB random, 7 MB of /usr/share/man: few files, like the
//	       peers' image (COPY of a directory, head -c /dev/urandom)
//	files  19 MB of /usr/share, 50 MB random, 100 MB of /usr/local/go
//	       (about 12000 files), 100 MB of /usr/bin, 7 MB of /usr/share/man
//
// Push goes to an empty registry each time. The floors are reported too:
// copying the compressed layers over loopback (three GETs at a time, as a
// pull does) and gunzipping them on one core. Run with
//
//	go test -run '^$' -bench RegistryPullPush -benchtime 5x ./integration/
func BenchmarkRegistryPullPush(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the daemon needs root")
	}
	reg := startCNCFRegistry(b, nil)
	base := benchLayer{dir: "/usr/lib/x86_64-linux-gnu", budget: 116 << 20}
	images := []struct {
		name   string
		layers []benchLayer
	}{
		{"multi", []benchLayer{base, {dir: "/usr/share", budget: 19 << 20}, {budget: 50 << 20}, {budget: 100 << 20},
			{budget: 100 << 20}, {dir: "/usr/share/man", budget: 7 << 20}}},
		{"files", []benchLayer{base, {dir: "/usr/share", budget: 19 << 20}, {budget: 50 << 20},
			{dir: "/usr/local/go", budget: 100 << 20}, {dir: "/usr/bin", budget: 100 << 20}, {dir: "/usr/share/man", budget: 7 << 20}}},
	}
	d := startBenchDaemon(b)
	for _, img := range images {
		b.Run(img.name, func(b *testing.B) {
			layers := buildLayers(b, img.layers)
			baseRef, full := pushBenchImage(b, reg, img.name, layers)
			var pulled int64
			for _, l := range layers[1:] {
				pulled += int64(len(l.blob))
			}
			b.Logf("%s: %d layers, %d MB uncompressed, %d MB compressed, %d files; pulled: %d MB compressed", img.name, len(layers),
				sumRaw(layers)>>20, sumBlob(layers)>>20, sumFiles(layers), pulled>>20)
			floors(b, reg, img.name, layers[1:])
			d.cli(b, "pull", baseRef)
			var pulls, pushes []time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				d.cli(b, "pull", full)
				pulls = append(pulls, time.Since(start))

				target := startCNCFRegistry(b, nil) + "/berth-bench/" + img.name + ":v1"
				d.cli(b, "tag", full, target)
				start = time.Now()
				d.cli(b, "push", target)
				pushes = append(pushes, time.Since(start))
				d.cli(b, "rmi", full, target)
			}
			d.cli(b, "rmi", baseRef)
			b.ReportMetric(median(pulls).Seconds(), "s/pull")
			b.ReportMetric(median(pushes).Seconds(), "s/push")
			b.Logf("%s pull (base present): median %.3f s of %v; %.0f MB/s of compressed layers", img.name, median(pulls).Seconds(), pulls,
				float64(pulled)/1e6/median(pulls).Seconds())
			b.Logf("%s push to an empty registry: median %.3f s of %v", img.name, median(pushes).Seconds(), pushes)
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

type benchLayer struct {
	dir    string // files of dir, in name order; "" is one random file
	budget int64
	raw    []byte // the tar
	blob   []byte // gzip of raw
	files  int
}

func sumRaw(ls []benchLayer) (n int64) {
	for _, l := range ls {
		n += int64(len(l.raw))
	}
	return n
}

func sumFiles(ls []benchLayer) (n int) {
	for _, l := range ls {
		n += l.files
	}
	return n
}

func sumBlob(ls []benchLayer) (n int64) {
	for _, l := range ls {
		n += int64(len(l.blob))
	}
	return n
}

func buildLayers(b *testing.B, specs []benchLayer) []benchLayer {
	b.Helper()
	var out []benchLayer
	for i, l := range specs {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if l.dir == "" {
			data := make([]byte, l.budget)
			rand.Read(data)
			tw.WriteHeader(&tar.Header{Name: "payload/random", Mode: 0o644, Size: l.budget, ModTime: time.Unix(1700000000, 0)})
			tw.Write(data)
			l.files = 1
		} else {
			l.files = tarFiles(b, tw, l.dir, l.budget, i)
		}
		tw.Close()
		var z bytes.Buffer
		zw, _ := pgzip.NewWriterLevel(&z, gzip.DefaultCompression)
		zw.Write(buf.Bytes())
		zw.Close()
		l.raw, l.blob = buf.Bytes(), z.Bytes()
		out = append(out, l)
	}
	return out
}

// tarFiles adds regular files of dir, in name order, until budget bytes.
func tarFiles(b *testing.B, tw *tar.Writer, dir string, budget int64, layer int) int {
	var paths []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var n int64
	files := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || n+int64(len(data)) > budget {
			continue
		}
		name := filepath.Join("payload", string(rune('a'+layer)), p)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
		n += int64(len(data))
		files++
	}
	return files
}

// pushBenchImage stores two images: base (the first layer) and full.
func pushBenchImage(b *testing.B, reg, name string, layers []benchLayer) (string, string) {
	b.Helper()
	ctx := context.Background()
	sess := remote.New(remote.Options{}).Session(nil)
	push := func(ref string, ls []benchLayer) {
		named, _ := reference.ParseNormalizedNamed(ref)
		var descs []ocispec.Descriptor
		var diffIDs []digest.Digest
		for _, l := range ls {
			d := ocispec.Descriptor{MediaType: remote.MediaTypeDockerLayer, Digest: digest.FromBytes(l.blob), Size: int64(len(l.blob))}
			if err := sess.PushBlob(ctx, named, d, bytes.NewReader(l.blob)); err != nil {
				b.Fatal(err)
			}
			descs = append(descs, d)
			diffIDs = append(diffIDs, digest.FromBytes(l.raw))
		}
		cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
		cd := ocispec.Descriptor{MediaType: remote.MediaTypeDockerConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
		if err := sess.PushBlob(ctx, named, cd, bytes.NewReader(cfg)); err != nil {
			b.Fatal(err)
		}
		m := ocispec.Manifest{MediaType: remote.MediaTypeDockerManifest, Config: cd, Layers: descs}
		m.SchemaVersion = 2
		body, _ := json.Marshal(m)
		if _, err := sess.PushManifest(ctx, named, remote.MediaTypeDockerManifest, body); err != nil {
			b.Fatal(err)
		}
	}
	base, full := reg+"/berth-bench/base-"+name+":v1", reg+"/berth-bench/"+name+":v1"
	push(base, layers[:1])
	push(full, layers)
	return base, full
}

// floors measures what no pull can beat on this machine: moving the
// compressed layers over loopback (concurrently, 3 at a time as a pull
// does) and gunzipping them on one core.
func floors(b *testing.B, reg, name string, layers []benchLayer) {
	b.Helper()
	start := time.Now()
	errs := make(chan error, len(layers))
	sem := make(chan struct{}, 3)
	var total int64
	for _, l := range layers {
		total += int64(len(l.blob))
		go func(d digest.Digest) {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := http.Get("http://" + reg + "/v2/berth-bench/" + name + "/blobs/" + d.String())
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}(digest.FromBytes(l.blob))
	}
	for range layers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	net := time.Since(start)
	start = time.Now()
	var raw int64
	for _, l := range layers {
		zr, err := gzip.NewReader(bytes.NewReader(l.blob))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, zr)
		raw += n
	}
	unz := time.Since(start)
	b.Logf("floor: loopback GET of %d MB: %.3f s (%.0f MB/s); gunzip to %d MB on one core: %.3f s (%.0f MB/s of output)",
		total>>20, net.Seconds(), float64(total)/1e6/net.Seconds(), raw>>20, unz.Seconds(), float64(raw)/1e6/unz.Seconds())
}

// benchDaemon is a berth daemon for benchmarks (the test harness takes a
// *testing.T).
type benchDaemon struct {
	host, cfg string
}

func startBenchDaemon(b *testing.B) *benchDaemon {
	b.Helper()
	dir, err := os.MkdirTemp("", "bbench-")
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600)
	d := &benchDaemon{host: "unix://" + filepath.Join(dir, "berth.sock"), cfg: filepath.Join(dir, "cfg")}
	cmd := exec.Command(berthBin, "daemon", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", d.host, "--config-file", filepath.Join(dir, "daemon.json"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c := exec.Command(berthBin, "-H", d.host, "version"); c.Run() == nil {
			return d
		}
	}
	b.Fatal("daemon did not start")
	return nil
}

func (d *benchDaemon) cli(b *testing.B, args ...string) {
	b.Helper()
	cmd := exec.Command(berthBin, append([]string{"-H", d.host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("berth %v: %v\n%s", args, err, out)
	}
}
