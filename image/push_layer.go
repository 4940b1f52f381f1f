package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"berth/archive"
	"berth/errdefs"
	"berth/remote"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// layerUpload pushes one layer of one tag.
type layerUpload struct {
	s        *Service
	sess     *remote.Session
	ref      reference.Named
	layer    layerRecord
	progress func(Progress)
}

// push makes the layer exist in the target repository and returns the
// descriptor the manifest lists for it. Known compressed forms are tried
// first (exists there, or mount from a sibling repository), so a layer
// pushed or pulled before is not compressed again.
func (u *layerUpload) push(ctx context.Context) (ocispec.Descriptor, error) {
	sources, err := u.s.blobSources(u.layer.DiffID)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	sources = slices.DeleteFunc(sources, func(b blobSource) bool { return !gzipLayer(b.MediaType) })
	repo := u.ref.Name()
	// Sources recorded for this very repository first.
	slices.SortStableFunc(sources, func(a, b blobSource) int {
		return boolRank(slices.Contains(b.Repos, repo)) - boolRank(slices.Contains(a.Repos, repo))
	})
	for _, src := range sources {
		desc := ocispec.Descriptor{MediaType: remote.MediaTypeDockerLayer, Digest: src.Digest, Size: src.Size}
		ok, err := u.sess.BlobExists(ctx, u.ref, desc)
		if err != nil {
			return desc, err
		}
		if ok {
			u.progress(Progress{Status: "Layer already exists"})
			return desc, u.record(desc)
		}
	}
	domain := reference.Domain(u.ref)
	for _, src := range sources {
		desc := ocispec.Descriptor{MediaType: remote.MediaTypeDockerLayer, Digest: src.Digest, Size: src.Size}
		for i := len(src.Repos) - 1; i >= 0; i-- {
			from, err := reference.ParseNormalizedNamed(src.Repos[i])
			if err != nil || reference.Domain(from) != domain || from.Name() == repo {
				continue
			}
			ok, err := u.sess.MountBlob(ctx, u.ref, reference.Path(from), desc)
			if err != nil {
				// Mounting is an optimisation; a registry that refuses
				// it still takes an upload.
				u.s.log.DebugContext(ctx, "mount failed", "digest", desc.Digest, "from", src.Repos[i], "err", err)
				continue
			}
			if ok {
				u.progress(Progress{Status: "Mounted from " + reference.Path(from)})
				return desc, u.record(desc)
			}
		}
	}
	return u.upload(ctx)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func gzipLayer(mt string) bool {
	return mt == remote.MediaTypeDockerLayer || mt == ocispec.MediaTypeImageLayerGzip
}

// maxPushAttempts bounds how often one blob upload is started over after
// a transient failure (the client already retries single requests).
const maxPushAttempts = 3

// upload compresses the layer into an unnamed temporary file (the
// registry needs digest and size before the bytes), then uploads it.
func (u *layerUpload) upload(ctx context.Context) (ocispec.Descriptor, error) {
	f, desc, err := u.compress(ctx)
	if err != nil {
		return desc, err
	}
	defer f.Close()
	delay := time.Second
	for attempt := 1; ; attempt++ {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return desc, err
		}
		src := &countingReader{r: f, emit: u.progress, status: "Pushing", total: desc.Size, ctx: ctx}
		err = u.sess.PushBlob(ctx, u.ref, desc, src)
		if err == nil || attempt == maxPushAttempts || ctx.Err() != nil || !errors.Is(err, errdefs.ErrUnavailable) {
			break
		}
		u.s.log.WarnContext(ctx, "layer upload failed, retrying", "digest", desc.Digest, "err", err, "delay", delay)
		if err := sleepCtx(ctx, delay); err != nil {
			return desc, err
		}
		delay *= 2
	}
	if err != nil {
		return desc, err
	}
	u.progress(Progress{Status: "Pushed"})
	return desc, u.record(desc)
}

// compress writes the layer's tar, gzip-compressed with parallel pgzip, to
// a temporary file that is unlinked at once (nothing is left behind even
// if the daemon dies), and returns it with the blob's descriptor.
func (u *layerUpload) compress(ctx context.Context) (*os.File, ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: remote.MediaTypeDockerLayer}
	if u.layer.Blob == "" {
		return nil, desc, fmt.Errorf("layer %s: no stored tar to push: %w", shortID(u.layer.DiffID), errdefs.ErrFailedPrecondition)
	}
	tar, err := u.s.content.Open(ctx, u.layer.Blob)
	if err != nil {
		return nil, desc, fmt.Errorf("layer %s: %w", shortID(u.layer.DiffID), err)
	}
	defer tar.Close()
	f, err := os.CreateTemp("", "berth-push-")
	if err != nil {
		return nil, desc, fmt.Errorf("layer %s: spool: %w", shortID(u.layer.DiffID), err)
	}
	os.Remove(f.Name())
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	dg := digest.SHA256.Digester()
	cnt := &byteCounter{}
	zw, err := archive.CompressStream(io.MultiWriter(f, dg.Hash(), cnt), archive.Gzip)
	if err != nil {
		return nil, desc, err
	}
	src := &countingReader{r: tar, emit: u.progress, status: "Pushing", total: u.layer.BlobSize, ctx: ctx}
	if _, err := io.Copy(zw, src); err != nil {
		zw.Close()
		return nil, desc, fmt.Errorf("layer %s: compress: %w", shortID(u.layer.DiffID), err)
	}
	if err := zw.Close(); err != nil {
		return nil, desc, fmt.Errorf("layer %s: compress: %w", shortID(u.layer.DiffID), err)
	}
	desc.Digest, desc.Size = dg.Digest(), cnt.n
	ok = true
	return f, desc, nil
}

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// record remembers that the target repository holds desc for this layer.
func (u *layerUpload) record(desc ocispec.Descriptor) error {
	return u.s.db.Update(func(tx *bolt.Tx) error {
		return addBlobSource(tx, u.layer.DiffID, desc, u.ref)
	})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
