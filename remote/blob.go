package remote

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

// FetchBlob streams desc's bytes from offset on. A broken transfer is
// resumed transparently with a Range request from where it stopped, up to
// MaxRetries times; a registry that ignores Range (200 instead of 206) has
// the leading bytes skipped. The stream ends with io.ErrUnexpectedEOF if
// fewer than desc.Size bytes arrive and errors if more do.
//
// FetchBlob does not check the digest: the caller hashes what it writes
// (the content store verifies on commit), or wraps the reader in
// VerifyReader when offset is 0.
func (s *Session) FetchBlob(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if err := checkDescriptor("blob", desc); err != nil {
		return nil, err
	}
	if offset < 0 || offset > desc.Size {
		return nil, fmt.Errorf("blob %s: offset %d outside 0..%d: %w", desc.Digest, offset, desc.Size, errdefs.ErrInvalidArgument)
	}
	br := &blobReader{ctx: ctx, s: s, ref: ref, desc: desc, pos: offset, retries: max(s.c.opts.MaxRetries, 0),
		failPos: offset, delay: s.c.opts.RetryBackoff}
	if err := br.open(); err != nil {
		return nil, err
	}
	return br, nil
}

// blobReader is a blob download that reconnects on failure.
type blobReader struct {
	ctx     context.Context // the FetchBlob call's: the reader lives within it
	s       *Session
	ref     reference.Named
	desc    ocispec.Descriptor
	pos     int64
	body    io.ReadCloser
	retries int   // resumptions left
	failPos int64 // where the last failure happened
	delay   time.Duration
}

// resumeProgress is how far a download must get after a failure to earn
// back its full retry budget: a long download over a flaky link may fail
// many times, but never twice in a row at the same place.
const resumeProgress = 1 << 20

func (br *blobReader) open() error {
	hdr := http.Header{}
	if br.pos > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(br.pos, 10)+"-")
	}
	resp, _, err := br.s.do(br.ctx, request{
		method: http.MethodGet, domain: reference.Domain(br.ref),
		path:   "/v2/" + reference.Path(br.ref) + "/blobs/" + br.desc.Digest.String(),
		header: hdr, scopes: []string{pullScope(br.ref)}, pull: true, idempotent: true,
	})
	if err != nil {
		return fmt.Errorf("blob %s: %w", br.desc.Digest, err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && br.pos > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != br.pos {
			resp.Body.Close()
			return fmt.Errorf("blob %s: asked for bytes from %d, got Content-Range %q: %w", br.desc.Digest, br.pos, resp.Header.Get("Content-Range"), errdefs.ErrUnavailable)
		}
	case resp.StatusCode == http.StatusOK:
		if br.pos > 0 {
			// Range ignored: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, br.pos); err != nil {
				resp.Body.Close()
				return fmt.Errorf("blob %s: skip %d bytes: %w: %w", br.desc.Digest, br.pos, err, errdefs.ErrUnavailable)
			}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && br.pos == br.desc.Size:
		resp.Body.Close()
		resp.Body = http.NoBody
	default:
		defer resp.Body.Close()
		return fmt.Errorf("blob %s: %w", br.desc.Digest, responseError(resp))
	}
	br.body = resp.Body
	return nil
}

func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	startStr, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(startStr, 10, 64)
	return n, err == nil
}

func (br *blobReader) Read(p []byte) (int, error) {
	for {
		if br.body == nil {
			if err := br.open(); err != nil {
				return 0, err
			}
		}
		if remaining := br.desc.Size - br.pos; int64(len(p)) > remaining+1 {
			// One byte more than expected lets an overlong blob show itself.
			p = p[:remaining+1]
		}
		n, err := br.body.Read(p)
		br.pos += int64(n)
		if br.pos > br.desc.Size {
			return n, fmt.Errorf("blob %s: more than %d bytes: %w", br.desc.Digest, br.desc.Size, errdefs.ErrInvalidArgument)
		}
		if err == nil || n > 0 && errors.Is(err, io.EOF) && br.pos < br.desc.Size {
			return n, nil
		}
		if errors.Is(err, io.EOF) && br.pos == br.desc.Size {
			return n, io.EOF
		}
		// Cut short (EOF early or a network error): reconnect from pos.
		br.body.Close()
		br.body = nil
		if err := br.beforeResume(err); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// beforeResume spends one retry on the failure cause (and waits the
// backoff), or returns the error to give up with.
func (br *blobReader) beforeResume(cause error) error {
	if br.pos-br.failPos >= resumeProgress {
		br.retries, br.delay = max(br.s.c.opts.MaxRetries, 0), br.s.c.opts.RetryBackoff
	}
	br.failPos = br.pos
	if br.retries == 0 || br.ctx.Err() != nil {
		if errors.Is(cause, io.EOF) {
			cause = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("blob %s at byte %d: %w", br.desc.Digest, br.pos, cause)
	}
	br.retries--
	br.s.c.log.DebugContext(br.ctx, "resuming blob", "digest", br.desc.Digest, "offset", br.pos, "err", cause)
	if err := sleep(br.ctx, br.delay); err != nil {
		return err
	}
	br.delay = min(br.delay*2, maxBackoff)
	return nil
}

func (br *blobReader) Close() error {
	if br.body == nil {
		return nil
	}
	err := br.body.Close()
	br.body = nil
	return err
}

// VerifyReader wraps r, the whole content of desc, so that reading it to
// the end fails if the bytes are too few, too many, or hash to another
// digest. Only reaching io.EOF without error proves the content.
func VerifyReader(r io.Reader, desc ocispec.Descriptor) (io.Reader, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	return &verifier{r: r, desc: desc, h: desc.Digest.Algorithm().Hash()}, nil
}

type verifier struct {
	r    io.Reader
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.desc.Size {
		return n, fmt.Errorf("blob %s: more than %d bytes: %w", v.desc.Digest, v.desc.Size, errdefs.ErrInvalidArgument)
	}
	if errors.Is(err, io.EOF) {
		if v.n < v.desc.Size {
			return n, fmt.Errorf("blob %s: %d of %d bytes: %w", v.desc.Digest, v.n, v.desc.Size, io.ErrUnexpectedEOF)
		}
		if got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h); got != v.desc.Digest {
			return n, fmt.Errorf("blob %s: content hashes to %s: %w", v.desc.Digest, got, errdefs.ErrInvalidArgument)
		}
	}
	return n, err
}
