package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestItem is one entry of the legacy manifest.json, in Docker's field
// order and spelling.
type manifestItem struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
	// Parent is the image this one was built on, when the archive holds
	// it too; load restores the link.
	Parent digest.Digest `json:",omitempty"`
}

// copyBufSize is the chunk in which blobs go into the archive: large enough
// that a socket write is not per 32 KB, small enough to stay flat.
const copyBufSize = 256 << 10

// write streams the archive: blobs first, then the small files, which are
// built from what was planned.
func (p *savePlan) write(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	aw := &archiveWriter{ctx: ctx, s: p.s, tw: tw, written: map[digest.Digest]bool{}, buf: make([]byte, copyBufSize)}
	for _, dir := range []string{ocispec.ImageBlobsDir + "/", ocispec.ImageBlobsDir + "/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	for _, img := range p.images {
		for _, l := range img.layers {
			if err := aw.blob(l.blob, l.size, img.created); err != nil {
				return err
			}
		}
		if err := aw.blob(img.id, img.configSize, img.created); err != nil {
			return err
		}
		if err := aw.bytes(blobPath(digest.FromBytes(img.manifest)), img.manifest, time.Unix(0, 0)); err != nil {
			return err
		}
	}
	// Byte for byte what Docker writes: index.json compact, manifest.json
	// and repositories with a trailing newline, oci-layout with a space.
	idx, err := json.Marshal(p.index())
	if err != nil {
		return fmt.Errorf("save %s: %w", archiveIndex, err)
	}
	if err := aw.bytes(archiveIndex, idx, time.Unix(0, 0)); err != nil {
		return err
	}
	if err := aw.jsonLine(archiveManifest, p.legacyManifest()); err != nil {
		return err
	}
	layout := `{"imageLayoutVersion": "` + ocispec.ImageLayoutVersion + `"}`
	if err := aw.bytes(ocispec.ImageLayoutFile, []byte(layout), time.Unix(0, 0)); err != nil {
		return err
	}
	if repos := p.repositories(); len(repos) > 0 {
		if err := aw.jsonLine(archiveRepositories, repos); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func (p *savePlan) index() ocispec.Index {
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	for _, img := range p.images {
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.manifest), Size: int64(len(img.manifest))}
		if len(img.refs) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, ref := range img.refs {
			d := desc
			d.Annotations = map[string]string{annotationImageName: ref.String(), ocispec.AnnotationRefName: ref.Tag()}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	return idx
}

func (p *savePlan) legacyManifest() []manifestItem {
	out := []manifestItem{}
	saved := map[digest.Digest]bool{}
	for _, img := range p.images {
		saved[img.id] = true
	}
	for _, img := range p.images {
		item := manifestItem{Config: blobPath(img.id), Layers: []string{}}
		if saved[img.parent] {
			item.Parent = img.parent
		}
		for _, ref := range img.refs {
			item.RepoTags = append(item.RepoTags, reference.FamiliarString(ref))
		}
		for _, l := range img.layers {
			item.Layers = append(item.Layers, blobPath(l.blob))
		}
		out = append(out, item)
	}
	return out
}

// repositories maps familiar repository names to tags to the top layer's
// blob, as Docker 25 writes it. Images without layers have nothing to name.
func (p *savePlan) repositories() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, img := range p.images {
		if len(img.layers) == 0 {
			continue
		}
		top := img.layers[len(img.layers)-1].blob.Encoded()
		for _, ref := range img.refs {
			name := reference.FamiliarName(ref)
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			out[name][ref.Tag()] = top
		}
	}
	return out
}

// archiveWriter writes entries, each blob once.
type archiveWriter struct {
	ctx     context.Context
	s       *Service
	tw      *tar.Writer
	written map[digest.Digest]bool
	buf     []byte
}

func (a *archiveWriter) header(name string, size int64, mtime time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime.Truncate(time.Second)}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

// blob copies a content-store blob into the archive, checking that the
// bytes still hash to their name: a corrupt store must not produce an
// archive that looks whole.
func (a *archiveWriter) blob(d digest.Digest, size int64, mtime time.Time) error {
	if a.written[d] {
		return nil
	}
	a.written[d] = true
	f, err := a.s.content.Open(a.ctx, d)
	if err != nil {
		return fmt.Errorf("save: blob %s: %w", d, err)
	}
	defer f.Close()
	if err := a.header(blobPath(d), size, mtime); err != nil {
		return err
	}
	v := d.Verifier()
	n, err := io.CopyBuffer(a.tw, io.TeeReader(ctxReader{a.ctx, io.LimitReader(f, size)}, v), a.buf)
	if err != nil {
		return fmt.Errorf("save: blob %s: %w", d, err)
	}
	if n != size || !v.Verified() {
		return fmt.Errorf("save: blob %s: content does not match its digest (%d of %d bytes): %w", d, n, size, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func (a *archiveWriter) bytes(name string, b []byte, mtime time.Time) error {
	if err := a.header(name, int64(len(b)), mtime); err != nil {
		return err
	}
	if _, err := a.tw.Write(b); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

func (a *archiveWriter) jsonLine(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return a.bytes(name, append(b, '\n'), time.Unix(0, 0))
}

// ctxReader ends a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
