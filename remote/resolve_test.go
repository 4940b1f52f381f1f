package remote

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, domain, path, str string }{
		{"busybox", "docker.io", "library/busybox", "docker.io/library/busybox:latest"},
		{"user/app:1", "docker.io", "user/app", "docker.io/user/app:1"},
		{"localhost:5000/a/b", "localhost:5000", "a/b", "localhost:5000/a/b:latest"},
		{"reg.example/x@sha256:" + strings.Repeat("a", 64), "reg.example", "x", "reg.example/x@sha256:" + strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		r, err := ParseReference(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if apiDomain := r.String(); apiDomain != tt.str || !strings.HasPrefix(r.Name(), tt.domain+"/"+tt.path) {
			t.Errorf("%s: got %s", tt.in, r)
		}
	}
	if _, err := ParseReference("upper/Case"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("uppercase name: %v", err)
	}
	if got := apiHost("docker.io"); got != "registry-1.docker.io" {
		t.Errorf("apiHost(docker.io) = %s", got)
	}
}

func TestPlatformRank(t *testing.T) {
	t.Parallel()
	p := func(s string) ocispec.Platform {
		parts := strings.Split(s, "/")
		pl := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) > 2 {
			pl.Variant = parts[2]
		}
		return pl
	}
	tests := []struct {
		want, have string
		match      bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/x86_64", true},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/amd64", "linux/amd64/v3", false},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64", "windows/amd64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/aarch64", "linux/arm64", true},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm64", "linux/arm/v7", false},
	}
	for _, tt := range tests {
		if got := platformRank(NormalizePlatform(p(tt.want)), p(tt.have)) > 0; got != tt.match {
			t.Errorf("want %s, have %s: match %v", tt.want, tt.have, got)
		}
	}
}

// multiArch serves an index over manifests for several platforms plus an
// attestation entry, returning each platform's manifest digest.
func multiArch(t *testing.T, fs *faultServer, mediaType string) (digest.Digest, map[string]digest.Digest) {
	t.Helper()
	cfg := fs.addBlob([]byte(`{"architecture":"amd64","os":"linux"}`))
	layer := fs.addBlob(randomBytes(t, 100))
	idx := ocispec.Index{MediaType: mediaType}
	idx.SchemaVersion = 2
	out := map[string]digest.Digest{}
	for _, pl := range []ocispec.Platform{
		{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "amd64", Variant: "v3"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "arm", Variant: "v6"},
		{OS: "unknown", Architecture: "unknown"},
	} {
		cfg.Annotations = map[string]string{"p": PlatformString(pl)} // makes each manifest distinct
		body := imageManifest(t, ocispec.MediaTypeImageManifest, cfg, layer)
		d := fs.addManifest(PlatformString(pl), ocispec.MediaTypeImageManifest, body)
		pl := pl
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(body)), Platform: &pl})
		out[PlatformString(pl)] = d
	}
	body, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return fs.addManifest("multi", mediaType, body), out
}

func TestResolveIndex(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		fs := newFaultServer(t, useTLS)
		indexDigest, byPlatform := multiArch(t, fs, MediaTypeDockerManifestList)
		s := testClient(t, Options{}).Session(nil)
		ctx := context.Background()
		tests := []struct {
			platform ocispec.Platform
			want     string
		}{
			{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
			{ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v4"}, "linux/amd64/v3"},
			{ocispec.Platform{OS: "linux", Architecture: "aarch64"}, "linux/arm64/v8"},
			{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v6"},
			{ocispec.Platform{OS: "linux", Architecture: "s390x"}, ""},
			{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, ""},
		}
		for _, tt := range tests {
			res, err := s.Resolve(ctx, mustRef(t, fs.host()+"/lib/app:multi"), tt.platform)
			if tt.want == "" {
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("tls=%v %s: err %v, want not found", useTLS, PlatformString(tt.platform), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("tls=%v %s: %v", useTLS, PlatformString(tt.platform), err)
			}
			if res.Descriptor.Digest != byPlatform[tt.want] || res.Index == nil || res.Index.Digest != indexDigest {
				t.Errorf("tls=%v %s: got %s (index %v), want %s", useTLS, PlatformString(tt.platform), res.Descriptor.Digest, res.Index, tt.want)
			}
			if len(res.Parsed.Layers) != 1 || digest.FromBytes(res.Manifest) != res.Descriptor.Digest {
				t.Errorf("parsed manifest wrong: %+v", res.Parsed)
			}
		}
		// By digest, a single manifest: no index.
		res, err := s.Resolve(ctx, mustRef(t, fs.host()+"/lib/app@"+byPlatform["linux/amd64"].String()), ocispec.Platform{})
		if err != nil || res.Index != nil || res.Descriptor.MediaType != ocispec.MediaTypeImageManifest {
			t.Fatalf("by digest: %+v, %v", res.Descriptor, err)
		}
	}
}

func TestResolveRejects(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, false)
	cfg := fs.addBlob([]byte("{}"))
	good := imageManifest(t, MediaTypeDockerManifest, cfg)
	fs.addManifest("good", MediaTypeDockerManifest, good)

	fs.addManifest("liar", MediaTypeDockerManifest, good)
	fs.manifests["liar"] = served{mediaType: MediaTypeDockerManifest, body: good, digestHdr: digest.FromString("other").String()}

	tooMany := make([]ocispec.Descriptor, MaxLayers+1)
	for i := range tooMany {
		tooMany[i] = cfg
	}
	fs.addManifest("layers", ocispec.MediaTypeImageManifest, imageManifest(t, ocispec.MediaTypeImageManifest, cfg, tooMany...))
	neg := cfg
	neg.Size = -1
	fs.addManifest("negative", ocispec.MediaTypeImageManifest, imageManifest(t, ocispec.MediaTypeImageManifest, cfg, neg))
	huge := []byte(`{"schemaVersion":2,"pad":"` + strings.Repeat("x", MaxManifestSize) + `"}`)
	fs.addManifest("huge", ocispec.MediaTypeImageManifest, huge)
	fs.addManifest("v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1,"fsLayers":[]}`))

	s := testClient(t, Options{}).Session(nil)
	tests := []struct {
		ref  string
		kind error
		msg  string
	}{
		{"liar", errdefs.ErrInvalidArgument, "does not match"},
		{"layers", errdefs.ErrInvalidArgument, "1001 layers"},
		{"negative", errdefs.ErrInvalidArgument, "size -1"},
		{"huge", errdefs.ErrInvalidArgument, "more than"},
		{"v1", errdefs.ErrNotImplemented, "schema 1"},
		{"absent", errdefs.ErrNotFound, "manifest unknown"},
		{"@" + digest.FromString("x").String(), errdefs.ErrNotFound, ""},
	}
	for _, tt := range tests {
		ref := fs.host() + "/app:" + tt.ref
		if strings.HasPrefix(tt.ref, "@") {
			ref = fs.host() + "/app" + tt.ref
		}
		_, err := s.Resolve(context.Background(), mustRef(t, ref), ocispec.Platform{})
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err %v, want kind %v containing %q", tt.ref, err, tt.kind, tt.msg)
		}
	}
	// A digest reference whose content differs from the digest.
	fs.manifests[digest.FromString("y").String()] = served{mediaType: MediaTypeDockerManifest, body: good, digestHdr: digest.FromString("y").String()}
	_, err := s.Resolve(context.Background(), mustRef(t, fs.host()+"/app@"+digest.FromString("y").String()), ocispec.Platform{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("digest mismatch: %v", err)
	}
	if _, err := s.Resolve(context.Background(), mustRef(t, fs.host()+"/app:good"), ocispec.Platform{}); err != nil {
		t.Errorf("good manifest: %v", err)
	}
}
