package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"berth/errdefs"
)

// resumes bounds how often one body is resumed after breaking.
const resumes = 3

// Reader streams the object at p from offset. A body that breaks is
// resumed from where it stopped, pinned to the ETag it started with, so a
// read never stitches two versions of an object together.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	k, err := d.key(p)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("storage path %s: offset %d: %w", p, offset, errdefs.ErrInvalidArgument)
	}
	r := &reader{ctx: ctx, d: d, path: p, key: k, off: offset}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// reader keeps the Reader call's context: io.Reader has no context, and
// the body lives within that call.
type reader struct {
	ctx  context.Context
	d    *Driver
	path string
	key  string
	etag *string
	off  int64
	body io.ReadCloser
	left int // resumes left
}

func (r *reader) open() error {
	in := &s3.GetObjectInput{Bucket: &r.d.cfg.Bucket, Key: &r.key, IfMatch: r.etag}
	if r.off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", r.off))
	}
	out, err := r.d.c.GetObject(r.ctx, in)
	if err == nil {
		if r.etag == nil {
			r.etag, r.left = out.ETag, resumes
		}
		r.body = out.Body
		return nil
	}
	werr := r.d.wrap(r.path, err)
	if !errors.Is(werr, errdefs.ErrInvalidArgument) {
		return werr
	}
	// A range starting at the end: S3 answers 416, the interface an empty
	// stream; beyond the end stays an error.
	info, serr := r.d.Stat(r.ctx, r.path)
	if serr != nil {
		return serr
	}
	if info.Size == r.off {
		r.body = io.NopCloser(eofReader{})
		return nil
	}
	return fmt.Errorf("storage path %s: offset %d beyond size %d: %w", r.path, r.off, info.Size, errdefs.ErrInvalidArgument)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (r *reader) Read(b []byte) (int, error) {
	n, err := r.body.Read(b)
	r.off += int64(n)
	if err == nil || errors.Is(err, io.EOF) || r.left <= 0 || r.ctx.Err() != nil {
		return n, err
	}
	r.body.Close()
	r.left--
	time.Sleep(100 * time.Millisecond)
	if oerr := r.open(); oerr != nil {
		return n, fmt.Errorf("storage path %s: resume at %d after %v: %w", r.path, r.off, err, oerr)
	}
	return n, nil
}

func (r *reader) Close() error { return r.body.Close() }
