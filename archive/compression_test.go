package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"berth/errdefs"
)

// payload is a layer tar big enough to span several codec blocks.
func payload(t testing.TB) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var ents []ent
	for i := range 40 {
		var b bytes.Buffer
		for range 2000 {
			fmt.Fprintf(&b, "line %d %d\n", i, rng.IntN(1000))
		}
		ents = append(ents, ent{name: fmt.Sprintf("f%02d", i), body: b.String()})
	}
	return layer(t, ents...)
}

func compressWith(t *testing.T, c Compression, viaCLI bool, plain []byte) []byte {
	t.Helper()
	if viaCLI {
		tool := map[Compression]string{Gzip: "gzip", Zstd: "zstd", Xz: "xz", Bzip2: "bzip2"}[c]
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s command not installed; cannot make %s test data", tool, c)
		}
		cmd := exec.Command(tool, "-c", "-q")
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return out
	}
	var buf bytes.Buffer
	w, err := CompressStream(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompression(t *testing.T) {
	t.Parallel()
	plain := payload(t)
	tests := []struct {
		c      Compression
		viaCLI bool
	}{
		{Uncompressed, false}, {Gzip, false}, {Zstd, false}, {Xz, false},
		{Gzip, true}, {Zstd, true}, {Xz, true}, {Bzip2, true},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/cli=%v", tt.c, tt.viaCLI)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			blob := compressWith(t, tt.c, tt.viaCLI, plain)
			if got := DetectCompression(blob[:magicLen]); got != tt.c {
				t.Fatalf("DetectCompression = %s, want %s", got, tt.c)
			}
			rc, c, err := DecompressStream(bytes.NewReader(blob))
			if err != nil || c != tt.c {
				t.Fatalf("DecompressStream = %s, %v", c, err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %d bytes, %v; want %d bytes", len(got), err, len(plain))
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.c == Uncompressed {
				return
			}
			for _, bad := range []struct {
				what string
				data []byte
			}{
				{"truncated", blob[:len(blob)/2]},
				{"trailer cut", blob[:len(blob)-4]},
				{"corrupt", corrupt(blob)},
			} {
				rc, _, err := DecompressStream(bytes.NewReader(bad.data))
				if err == nil {
					_, err = io.ReadAll(rc)
					rc.Close()
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("%s %s stream: err = %v, want ErrInvalidArgument", bad.what, tt.c, err)
				}
			}
		})
	}
}

func corrupt(blob []byte) []byte {
	b := bytes.Clone(blob)
	for i := len(b) / 2; i < len(b)/2+16; i++ {
		b[i] ^= 0x5a
	}
	return b
}

func TestCompressStreamRefusesBzip2(t *testing.T) {
	t.Parallel()
	if _, err := CompressStream(io.Discard, Bzip2); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("CompressStream(bzip2) = %v, want ErrInvalidArgument", err)
	}
}

// TestApplyTruncatedCompressed checks a short gzip or zstd blob fails the
// whole apply and leaves nothing outside root.
func TestApplyTruncatedCompressed(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	plain := payload(t)
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			blob := compressWith(t, c, false, plain)
			j := newJail(t)
			rc, _, err := DecompressStream(bytes.NewReader(blob[:len(blob)*2/3]))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			_, err = Apply(context.Background(), j.root, rc, ApplyOptions{})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Apply = %v, want ErrInvalidArgument", err)
			}
			j.assertUntouched(t)
		})
	}
}
