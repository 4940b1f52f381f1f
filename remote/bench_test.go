package remote

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkBlob200MB measures PushBlob and FetchBlob of a 200 MB blob
// against the CNCF registry on loopback (go test -bench Blob200MB
// ./remote/). The fetch side hashes as the content store would.
func BenchmarkBlob200MB(b *testing.B) {
	host := startRegistry(b, nil)
	data := make([]byte, 200<<20)
	// Incompressible and cheap to make: the blob content is irrelevant.
	for i := 0; i < len(data); i += 1 << 20 {
		copy(data[i:], randomBytes(b, 1<<20))
	}
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	ref, err := ParseReference(host + "/bench/blob")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, chunk := range []int64{0, 16 << 20} {
		name := "Push"
		if chunk > 0 {
			name = "PushChunked16M"
		}
		b.Run(name, func(b *testing.B) {
			s := New(Options{CertsDir: b.TempDir(), ChunkSize: chunk}).Session(nil)
			b.SetBytes(desc.Size)
			for b.Loop() {
				if err := s.PushBlob(ctx, ref, desc, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Fetch", func(b *testing.B) {
		s := New(Options{CertsDir: b.TempDir()}).Session(nil)
		b.SetBytes(desc.Size)
		for b.Loop() {
			rc, err := s.FetchBlob(ctx, ref, desc, 0)
			if err != nil {
				b.Fatal(err)
			}
			vr, err := VerifyReader(rc, desc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, vr); err != nil {
				b.Fatal(err)
			}
			if err := rc.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
