package remote

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"berth/errdefs"
	"berth/remote/credentials"
)

const registryBinary = "/usr/bin/docker-registry"

// startRegistry runs the CNCF distribution registry on a free loopback
// port with storage in a temp dir, optionally behind htpasswd auth for
// users (name → password). It returns host:port.
func startRegistry(tb testing.TB, users map[string]string) string {
	tb.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		tb.Skipf("CNCF registry not installed (%s, Debian package docker-registry): %v", registryBinary, err)
	}
	dir := tb.TempDir()
	auth := ""
	if users != nil {
		var lines bytes.Buffer
		for name, pw := range users {
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				tb.Fatal(err)
			}
			fmt.Fprintf(&lines, "%s:%s\n", name, hash)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), lines.Bytes(), 0o600); err != nil {
			tb.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-test-secret
%s`, filepath.Join(dir, "data"), addr, auth)
		confPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(registryBinary, "serve", confPath)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		if waitReady(addr, exited) {
			return addr
		}
		tb.Logf("registry on %s did not come up (attempt %d): %s", addr, attempt+1, logs.String())
	}
	tb.Fatal("could not start the registry")
	return ""
}

func waitReady(addr string, exited <-chan error) bool {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// testImage is a generated image: a config and gzip layers.
type testImage struct {
	config   ocispec.Descriptor
	blobs    map[digest.Digest][]byte
	layers   []ocispec.Descriptor
	manifest []byte
}

func makeImage(t testing.TB, arch string, files ...string) testImage {
	t.Helper()
	img := testImage{blobs: map[digest.Digest][]byte{}}
	var diffIDs []digest.Digest
	for _, name := range files {
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		content := []byte("content of " + name + " for " + arch)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, digest.FromBytes(tarBuf.Bytes()))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(tarBuf.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		img.layers = append(img.layers, img.add(MediaTypeDockerLayer, gz.Bytes()))
	}
	cfg, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	img.config = img.add(MediaTypeDockerConfig, cfg)
	m := ocispec.Manifest{MediaType: MediaTypeDockerManifest, Config: img.config, Layers: img.layers}
	m.SchemaVersion = 2
	if img.manifest, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return img
}

func (img *testImage) add(mediaType string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	img.blobs[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (img *testImage) push(t *testing.T, s *Session, ref string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	r := mustRef(t, ref)
	for _, desc := range append([]ocispec.Descriptor{img.config}, img.layers...) {
		if ok, err := s.BlobExists(ctx, r, desc); err != nil || ok {
			if err != nil {
				t.Fatalf("BlobExists: %v", err)
			}
			continue
		}
		if err := s.PushBlob(ctx, r, desc, bytes.NewReader(img.blobs[desc.Digest])); err != nil {
			t.Fatalf("PushBlob %s: %v", desc.Digest, err)
		}
	}
	d, err := s.PushManifest(ctx, r, MediaTypeDockerManifest, img.manifest)
	if err != nil {
		t.Fatalf("PushManifest: %v", err)
	}
	return d
}

func TestRealRegistryPushPull(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, nil)
	ctx := context.Background()
	for _, chunk := range []int64{0, 100} {
		s := testClient(t, Options{ChunkSize: chunk}).Session(nil)
		img := makeImage(t, "amd64", "etc/a", "etc/b")
		repo := fmt.Sprintf("%s/berth/test%d", host, chunk)
		pushed := img.push(t, s, repo+":v1")
		if pushed != digest.FromBytes(img.manifest) {
			t.Fatalf("pushed digest %s", pushed)
		}
		res, err := s.Resolve(ctx, mustRef(t, repo+":v1"), ocispec.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Descriptor.Digest != pushed || !bytes.Equal(res.Manifest, img.manifest) || res.Index != nil {
			t.Fatalf("resolved %s, want %s", res.Descriptor.Digest, pushed)
		}
		head, err := s.Head(ctx, mustRef(t, repo+":v1"))
		if err != nil || head.Digest != pushed || head.Size != int64(len(img.manifest)) || head.MediaType != MediaTypeDockerManifest {
			t.Fatalf("Head = %+v, %v", head, err)
		}
		for _, desc := range append([]ocispec.Descriptor{res.Parsed.Config}, res.Parsed.Layers...) {
			rc, err := s.FetchBlob(ctx, res.Ref, desc, 0)
			if err != nil {
				t.Fatal(err)
			}
			vr, err := VerifyReader(rc, desc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(vr)
			rc.Close()
			if err != nil || !bytes.Equal(got, img.blobs[desc.Digest]) {
				t.Fatalf("blob %s: %v", desc.Digest, err)
			}
			// Resume from the middle: the registry answers 206.
			rc, err = s.FetchBlob(ctx, res.Ref, desc, desc.Size/2)
			if err != nil {
				t.Fatal(err)
			}
			tail, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(tail, img.blobs[desc.Digest][desc.Size/2:]) {
				t.Fatalf("blob %s from the middle: %v", desc.Digest, err)
			}
		}
		// Cross-repository mount: 201, then the blob exists there.
		other := mustRef(t, fmt.Sprintf("%s/berth/other%d", host, chunk))
		mounted, err := s.MountBlob(ctx, other, "berth/test"+fmt.Sprint(chunk), img.layers[0])
		if err != nil || !mounted {
			t.Fatalf("MountBlob = %v, %v", mounted, err)
		}
		if ok, err := s.BlobExists(ctx, other, img.layers[0]); err != nil || !ok {
			t.Fatalf("mounted blob missing: %v, %v", ok, err)
		}
		if mounted, err := s.MountBlob(ctx, other, "berth/nowhere", img.layers[1]); err != nil || mounted {
			t.Fatalf("MountBlob from empty repo = %v, %v", mounted, err)
		}
		empty := ocispec.Descriptor{Digest: digest.FromBytes(nil), Size: 0}
		if err := s.PushBlob(ctx, mustRef(t, repo), empty, bytes.NewReader(nil)); err != nil {
			t.Fatalf("push empty blob: %v", err)
		}
		if rc, err := s.FetchBlob(ctx, mustRef(t, repo), empty, 0); err != nil {
			t.Fatalf("fetch empty blob: %v", err)
		} else if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
			t.Fatalf("empty blob read %d bytes, %v", len(b), err)
		} else {
			rc.Close()
		}
		if _, err := s.Resolve(ctx, mustRef(t, repo+":nope"), ocispec.Platform{}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing tag: %v", err)
		}
	}
}

func TestRealRegistryIndexAndTags(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, nil)
	ctx := context.Background()
	s := testClient(t, Options{}).Session(nil)
	repo := host + "/multi/app"
	amd := makeImage(t, "amd64", "x")
	arm := makeImage(t, "arm64", "x", "y")
	amdDigest := amd.push(t, s, repo+"@"+digest.FromBytes(amd.manifest).String())
	armDigest := arm.push(t, s, repo+"@"+digest.FromBytes(arm.manifest).String())
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: MediaTypeDockerManifest, Digest: amdDigest, Size: int64(len(amd.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: MediaTypeDockerManifest, Digest: armDigest, Size: int64(len(arm.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for i := range 5 {
		tag := fmt.Sprintf("t%d", i)
		if _, err := s.PushManifest(ctx, mustRef(t, repo+":"+tag), ocispec.MediaTypeImageIndex, body); err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	res, err := s.Resolve(ctx, mustRef(t, repo+":t3"), ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Descriptor.Digest != armDigest || res.Index == nil || res.Index.Digest != digest.FromBytes(body) || len(res.Parsed.Layers) != 2 {
		t.Fatalf("resolved %s (index %v)", res.Descriptor.Digest, res.Index)
	}
	got, err := s.Tags(ctx, mustRef(t, repo))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, tags) {
		t.Fatalf("Tags = %v, want %v", got, tags)
	}
}

func TestRealRegistryHtpasswd(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, map[string]string{"alice": "s3cret"})
	ctx := context.Background()
	c := testClient(t, Options{})
	if _, err := c.Login(ctx, host, credentials.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	for _, bad := range []credentials.AuthConfig{{Username: "alice", Password: "wrong"}, {Username: "bob", Password: "s3cret"}, {}} {
		if _, err := c.Login(ctx, host, bad); !errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Fatalf("Login %q: %v, want unauthenticated", bad.Username, err)
		}
	}
	img := makeImage(t, "amd64", "a", "b")
	alice := c.Session(staticCreds(credentials.AuthConfig{Username: "alice", Password: "s3cret"}))
	pushed := img.push(t, alice, host+"/private/app:v1")
	res, err := alice.Resolve(ctx, mustRef(t, host+"/private/app:v1"), ocispec.Platform{})
	if err != nil || res.Descriptor.Digest != pushed {
		t.Fatalf("Resolve with creds: %v", err)
	}
	anon := testClient(t, Options{}).Session(nil)
	if _, err := anon.Resolve(ctx, mustRef(t, host+"/private/app:v1"), ocispec.Platform{}); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("anonymous Resolve: %v, want unauthenticated", err)
	}
	if err := anon.PushBlob(ctx, mustRef(t, host+"/private/app"), img.config, bytes.NewReader(img.blobs[img.config.Digest])); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("anonymous PushBlob: %v, want unauthenticated", err)
	}
}
