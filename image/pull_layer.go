package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"berth/archive"
	"berth/content"
	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// How a layer travels (the fastest correct order on a loopback registry
// and on a slow link alike):
//
//  1. Download, holding one of the daemon's download slots. The compressed
//     bytes go to the ingest "pull-<blob digest>" (kept on failure, so a
//     retried pull resumes with a Range request) and, through the
//     decompressor, to the ingest of the uncompressed tar, whose digest is
//     checked against the config's diff ID. The tar is extracted as it
//     arrives: onto the parent layer when that is committed already, else,
//     where the snapshotter allows it (overlay2, see diffPreparer), into a
//     detached diff that is synced and measured at once. Only a
//     snapshotter whose layers are built on their parent's files (vfs,
//     btrfs) leaves such a layer waiting, downloaded, in the content store.
//  2. Extract (if not done yet) once the parent is committed: layer N's
//     snapshot is built on layer N-1's.
//  3. Commit the snapshot under its chain ID, in order from the base, and
//     record the layer, only after both digests matched. With detached
//     diffs this costs the metadata transactions alone, so the pull takes
//     about as long as its slowest layer rather than the sum of the
//     extractions.

// readBuffer is the read size between the stages of a layer's pipeline.
const readBuffer = 1 << 20

// ingestRef names the resumable ingest of a compressed blob.
func ingestRef(d digest.Digest) string { return "pull-" + d.String() }

func (j *layerJob) run(ctx context.Context) error {
	if ok, err := j.s.layerExists(ctx, j.spec.chain); err != nil || ok {
		return err
	}
	j.times.start = time.Now()
	defer j.logTimes(ctx)
	u, err := j.download(ctx)
	if err != nil {
		return err
	}
	j.times.mark(&j.times.downloaded)
	defer func() { j.discard(context.WithoutCancel(ctx), u) }()
	if u.none() && j.detachable() {
		// Stored (a resumed download): unpack it now rather than after
		// the parent.
		if u, err = j.extractStored(ctx); err != nil {
			return err
		}
	}
	if err := j.seal(ctx, &u); err != nil {
		return err
	}
	j.times.mark(&j.times.sealed)
	if j.parent != nil {
		if err := j.parent.wait(ctx); err != nil {
			return fmt.Errorf("layer %s: parent layer failed: %w", shortID(j.spec.desc.Digest), err)
		}
	}
	j.times.mark(&j.times.parent)
	if u.none() {
		if u, err = j.extractStored(ctx); err != nil {
			return err
		}
	}
	j.times.mark(&j.times.extracted)
	if err := j.s.recordLayer(ctx, u, j.spec, j.ref, &j.times); err != nil {
		return err
	}
	u = unpacked{}
	j.emit(Progress{Status: "Pull complete"})
	return nil
}

// layerExists reports whether chain is a committed, recorded layer.
func (s *Service) layerExists(ctx context.Context, chain digest.Digest) (bool, error) {
	var recorded bool
	err := s.db.View(func(tx *bolt.Tx) error {
		recorded = tx.Bucket(bucketLayers).Get([]byte(chain.String())) != nil
		return nil
	})
	if err != nil || !recorded {
		return false, err
	}
	if _, err := s.sn.Stat(ctx, chain.String()); err != nil {
		if errdefs.NotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// download brings the layer's uncompressed tar into the content store and
// returns where it was unpacked on the way, if it was.
func (j *layerJob) download(ctx context.Context) (unpacked, error) {
	defer j.markSlotted()
	// Slots go to layers bottom up, as Docker's do: every layer above waits
	// for the lowest missing one to be extracted, and goroutines started
	// together would otherwise take the slots in any order (often the top
	// layer first). The wait comes before the blob lock, so that a job
	// never holds a lock while it waits for another job.
	if err := j.awaitParentSlot(ctx); err != nil {
		return unpacked{}, err
	}
	unlock, err := j.s.dist.lockBlob(ctx, j.spec.desc.Digest)
	if err != nil {
		return unpacked{}, err
	}
	defer unlock()
	if _, err := j.s.content.Info(ctx, j.spec.diffID); err == nil {
		j.emit(Progress{Status: "Download complete"})
		return unpacked{}, nil
	}
	select {
	case j.s.dist.downloads <- struct{}{}:
	default:
		j.emit(Progress{Status: "Waiting"})
		select {
		case j.s.dist.downloads <- struct{}{}:
		case <-ctx.Done():
			return unpacked{}, ctx.Err()
		}
	}
	j.markSlotted()
	j.times.mark(&j.times.slot)
	defer func() { <-j.s.dist.downloads }()

	cw, err := j.s.content.Writer(ctx, ingestRef(j.spec.desc.Digest))
	if err != nil {
		return unpacked{}, fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
	}
	if cw.Offset() > 0 {
		err := j.resume(ctx, cw)
		if !errors.Is(err, errRestart) {
			return unpacked{}, err
		}
		if cw, err = j.s.content.Writer(ctx, ingestRef(j.spec.desc.Digest)); err != nil {
			return unpacked{}, fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
		}
		if err := cw.Truncate(ctx, 0); err != nil {
			cw.Close()
			return unpacked{}, err
		}
	}
	return j.fresh(ctx, cw)
}

// errRestart says the stored partial blob was unusable and the download
// starts over.
var errRestart = errors.New("restart download")

// fresh downloads the whole blob and unpacks it on the way (see
// unpackTarget). It consumes cw.
func (j *layerJob) fresh(ctx context.Context, cw *content.Writer) (_ unpacked, err error) {
	rc, err := j.sess.FetchBlob(ctx, j.ref, j.spec.desc, 0)
	if err != nil {
		cw.Close()
		return unpacked{}, err
	}
	defer rc.Close()
	src := j.progressReader(ctx, rc, "Downloading", 0, j.spec.desc.Size)
	u, apply, err := j.unpackTarget(ctx)
	if err != nil {
		cw.Close()
		return unpacked{}, err
	}
	j.times.streamed = apply != nil
	defer func() {
		if err != nil {
			j.discard(context.WithoutCancel(ctx), u)
		}
	}()
	in := io.TeeReader(src, cw)
	err = j.unpackStream(ctx, in, apply)
	if errors.Is(err, errdefs.ErrInvalidArgument) && src.err == nil {
		// Undecodable content: if the blob is not what the manifest
		// says, that is the error to report.
		if _, cerr := io.Copy(io.Discard, in); cerr == nil {
			if verr := j.verifyBlob(cw); verr != nil {
				err = verr
			}
		}
	}
	if err == nil {
		err = j.verifyBlob(cw)
	}
	if src.err != nil {
		// The decoder saw the broken download as a truncated stream; the
		// cause is the network, and the bytes so far stay for a retry.
		err = fmt.Errorf("layer %s: %w", shortID(j.spec.desc.Digest), transient(src.err))
	}
	if err != nil {
		cw.Close()
		if src.err == nil && ctx.Err() == nil {
			// The bytes arrived and were wrong: nothing to resume.
			j.s.content.Abort(context.WithoutCancel(ctx), ingestRef(j.spec.desc.Digest))
		}
		return unpacked{}, err
	}
	j.emit(Progress{Status: "Verifying Checksum"})
	j.emit(Progress{Status: "Download complete"})
	cw.Close()
	j.s.content.Abort(ctx, ingestRef(j.spec.desc.Digest))
	return u, nil
}

// resume completes a partial download with a Range request, commits the
// compressed blob, and unpacks it into the content store from there. It
// consumes cw and returns errRestart when the stored part was bad.
func (j *layerJob) resume(ctx context.Context, cw *content.Writer) error {
	off := cw.Offset()
	desc := j.spec.desc
	if off <= desc.Size {
		rc, err := j.sess.FetchBlob(ctx, j.ref, desc, off)
		if err != nil {
			cw.Close()
			return err
		}
		src := j.progressReader(ctx, rc, "Downloading", off, desc.Size)
		_, err = io.Copy(cw, src)
		rc.Close()
		if err != nil {
			cw.Close()
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	if err := j.verifyBlob(cw); err != nil {
		// What was stored before may be junk (a crash that kept the file
		// size but not its data): start from scratch once.
		j.s.log.WarnContext(ctx, "resumed layer did not verify; downloading it again", "digest", desc.Digest, "err", err)
		cw.Close()
		return errRestart
	}
	j.emit(Progress{Status: "Verifying Checksum"})
	existed := false
	if err := cw.Commit(ctx, desc.Size, desc.Digest); errors.Is(err, errdefs.ErrAlreadyExists) {
		existed = true
	} else if err != nil {
		return err
	}
	j.emit(Progress{Status: "Download complete"})
	f, err := j.s.content.Open(ctx, desc.Digest)
	if err != nil {
		return err
	}
	err = j.unpackStream(ctx, f, nil)
	f.Close()
	if !existed && desc.Digest != j.spec.diffID {
		j.s.content.Delete(context.WithoutCancel(ctx), desc.Digest)
	}
	return err
}

func (j *layerJob) verifyBlob(cw *content.Writer) error {
	d := j.spec.desc
	if cw.Offset() != d.Size {
		return fmt.Errorf("layer %s: got %d bytes, manifest says %d: %w", d.Digest, cw.Offset(), d.Size, errdefs.ErrInvalidArgument)
	}
	if got := cw.Digest(); got != d.Digest {
		return fmt.Errorf("layer %s: content digest %s does not match: %w", d.Digest, got, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (j *layerJob) parentReady() bool {
	if j.parent == nil {
		return true
	}
	select {
	case <-j.parent.done:
		return j.parent.err == nil
	default:
		return false
	}
}

// unpackStream decompresses a layer blob from src into the content store
// as its uncompressed tar (verified against the diff ID) and, when apply
// is given, unpacks it with apply at the same time. It reads src to its
// end.
func (j *layerJob) unpackStream(ctx context.Context, src io.Reader, apply func(context.Context, io.Reader) error) error {
	plain, _, err := archive.DecompressStream(src)
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
	}
	defer plain.Close()
	tarRef := "pull-tar-" + j.spec.diffID.String()
	tw, err := j.s.content.Writer(ctx, tarRef)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tw.Close()
			j.s.content.Abort(context.WithoutCancel(ctx), tarRef)
		}
	}()
	if err := tw.Truncate(ctx, 0); err != nil {
		return err
	}
	// Tar readers read 512-byte headers: a buffer turns them into large
	// writes to the ingest instead of a syscall per header.
	tee := bufio.NewReaderSize(io.TeeReader(plain, tw), readBuffer)
	if apply != nil {
		if err := apply(ctx, tee); err != nil {
			return fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
		}
	}
	// The rest: all of it when not extracting, else the tar's padding.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
	}
	// Bytes past the end of the compressed stream still count for its
	// digest (and an uncompressed layer is all read already).
	if _, err := io.Copy(io.Discard, src); err != nil {
		return fmt.Errorf("layer %s: %w", j.spec.desc.Digest, err)
	}
	ok = true
	err = tw.Commit(ctx, -1, j.spec.diffID)
	if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		j.s.content.Abort(context.WithoutCancel(ctx), tarRef)
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("layer %s: uncompressed content does not match diff ID %s: %w", j.spec.desc.Digest, j.spec.diffID, errdefs.ErrInvalidArgument)
		}
		return err
	}
	return nil
}

// extractStored unpacks the layer's uncompressed tar from the content
// store (see unpackTarget).
func (j *layerJob) extractStored(ctx context.Context) (_ unpacked, err error) {
	f, err := j.s.content.Open(ctx, j.spec.diffID)
	if err != nil {
		return unpacked{}, fmt.Errorf("layer %s: %w", shortID(j.spec.diffID), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return unpacked{}, err
	}
	u, apply, err := j.unpackTarget(ctx)
	if err != nil {
		return unpacked{}, err
	}
	if apply == nil {
		return unpacked{}, fmt.Errorf("layer %s: parent layer %s not ready: %w", shortID(j.spec.diffID), shortOr(j.spec.parent), errdefs.ErrFailedPrecondition)
	}
	r := bufio.NewReaderSize(j.progressReader(ctx, f, "Extracting", 0, st.Size()), readBuffer)
	if err := apply(ctx, r); err != nil {
		j.discard(context.WithoutCancel(ctx), u)
		return unpacked{}, fmt.Errorf("layer %s: %w", shortID(j.spec.desc.Digest), err)
	}
	return u, nil
}

// recordLayer commits the unpacked layer as its chain ID and records it,
// with the blob it came from for later pushes.
func (s *Service) recordLayer(ctx context.Context, u unpacked, spec layerSpec, ref reference.Named, times *layerTimes) error {
	s.layerMu.RLock()
	defer s.layerMu.RUnlock()
	if err := s.commitUnpacked(ctx, u, spec); err != nil {
		return err
	}
	times.mark(&times.committed)
	defer times.mark(&times.recorded)
	usage := u.usage
	if usage == nil {
		got, err := s.sn.Usage(ctx, spec.chain.String())
		if err != nil {
			return err
		}
		usage = &got
	}
	info, err := s.content.Info(ctx, spec.diffID)
	if err != nil {
		return err
	}
	rec := layerRecord{ChainID: spec.chain, DiffID: spec.diffID, Parent: spec.parent, Size: usage.Size,
		Blob: spec.diffID, BlobSize: info.Size, MediaType: ocispec.MediaTypeImageLayer}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketLayers), spec.chain.String(), rec); err != nil {
			return err
		}
		return addBlobSource(tx, spec.diffID, spec.desc, ref)
	})
}

// transient marks a download failure as worth retrying.
func transient(err error) error {
	for _, kind := range []error{errdefs.ErrUnavailable, errdefs.ErrInvalidArgument, errdefs.ErrNotFound,
		errdefs.ErrUnauthenticated, errdefs.ErrPermissionDenied, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, kind) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
}

// countingReader reports progress of a stream at most every tick, and
// remembers the first error its source gave, to tell a broken download
// (resumable) from bad content (discarded).
type countingReader struct {
	r       io.Reader
	emit    func(Progress)
	status  string
	n       int64
	total   int64
	last    time.Time
	err     error
	ctx     context.Context
	errOnce sync.Once
}

const progressTick = 100 * time.Millisecond

func (j *layerJob) progressReader(ctx context.Context, r io.Reader, status string, start, total int64) *countingReader {
	return &countingReader{r: r, emit: j.emit, status: status, n: start, total: total, ctx: ctx}
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.errOnce.Do(func() { c.err = err })
	}
	if now := time.Now(); n > 0 && (now.Sub(c.last) >= progressTick || c.n == c.total) {
		c.last = now
		c.emit(Progress{Status: c.status, Current: c.n, Total: c.total})
	}
	return n, err
}
