package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"berth/errdefs"
	"berth/registry/storage"
)

// maxCopyPart is the largest range one UploadPartCopy may copy.
const maxCopyPart = 5 << 30

// writer uploads parts as bytes arrive. It keeps the Writer call's
// context: io.Writer has no context, and the writer lives within that call.
type writer struct {
	ctx      context.Context
	d        *Driver
	path     string
	key      string
	uploadID *string
	parts    []types.CompletedPart
	buf      []byte
	size     int64
	done     bool
}

// Writer opens a writer for p; see storage.Driver.
func (d *Driver) Writer(ctx context.Context, p string, appendTo bool) (storage.FileWriter, error) {
	k, err := d.key(p)
	if err != nil {
		return nil, err
	}
	w := &writer{ctx: ctx, d: d, path: p, key: k, buf: make([]byte, 0, d.cfg.PartSize)}
	if !appendTo {
		return w, nil
	}
	info, err := d.Stat(ctx, p)
	if err == nil && info.IsDir {
		err = fmt.Errorf("storage path %s: %w", p, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := w.startWith(info.Size); err != nil {
		return nil, errors.Join(err, w.Cancel(ctx))
	}
	return w, nil
}

// startWith begins the new object with the existing one's n bytes: copied
// by the server when large enough to be parts, else read into the buffer.
func (w *writer) startWith(n int64) error {
	w.size = n
	if n == 0 {
		return nil
	}
	if n < minPart {
		b, err := w.d.Get(w.ctx, w.path)
		if err != nil {
			return err
		}
		if int64(len(b)) != n {
			return fmt.Errorf("storage path %s: changed while appending: %w", w.path, errdefs.ErrConflict)
		}
		w.buf = append(w.buf, b...)
		return nil
	}
	if err := w.begin(); err != nil {
		return err
	}
	pieces := (n + maxCopyPart - 1) / maxCopyPart
	for i := range pieces {
		start, end := n*i/pieces, n*(i+1)/pieces
		src := w.d.cfg.Bucket + "/" + w.key
		out, err := w.d.c.UploadPartCopy(w.ctx, &s3.UploadPartCopyInput{Bucket: &w.d.cfg.Bucket, Key: &w.key,
			UploadId: w.uploadID, PartNumber: aws.Int32(int32(len(w.parts) + 1)), CopySource: aws.String(src),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", start, end-1))})
		if err != nil {
			return w.d.wrap(w.path, err)
		}
		w.parts = append(w.parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(len(w.parts) + 1))})
	}
	return nil
}

func (w *writer) begin() error {
	out, err := w.d.c.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{Bucket: &w.d.cfg.Bucket, Key: &w.key})
	if err != nil {
		return w.d.wrap(w.path, err)
	}
	w.uploadID = out.UploadId
	return nil
}

// partSize grows with the part count, so the 10,000 parts S3 allows reach
// far beyond PartSize × 10,000.
func (w *writer) partSize() int {
	return int(w.d.cfg.PartSize) << min(len(w.parts)/1000, 6)
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("storage path %s: writer closed: %w", w.path, errdefs.ErrFailedPrecondition)
	}
	n := 0
	for len(b) > 0 {
		take := min(len(b), w.partSize()-len(w.buf))
		w.buf = append(w.buf, b[:take]...)
		b, n = b[take:], n+take
		w.size += int64(take)
		if len(w.buf) >= w.partSize() {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush uploads the buffer as the next part.
func (w *writer) flush() error {
	if w.uploadID == nil {
		if err := w.begin(); err != nil {
			return err
		}
	}
	num := aws.Int32(int32(len(w.parts) + 1))
	out, err := w.d.c.UploadPart(w.ctx, &s3.UploadPartInput{Bucket: &w.d.cfg.Bucket, Key: &w.key, UploadId: w.uploadID,
		PartNumber: num, Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
	if err != nil {
		return w.d.wrap(w.path, err)
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: num})
	w.buf = w.buf[:0]
	return nil
}

func (w *writer) Size() int64 { return w.size }

// Commit makes the object appear: one PutObject when it never grew past a
// part, else the last part and CompleteMultipartUpload.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("storage path %s: writer closed: %w", w.path, errdefs.ErrFailedPrecondition)
	}
	w.done = true
	w.ctx = ctx
	if w.uploadID == nil {
		return w.d.Put(ctx, w.path, w.buf)
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return errors.Join(err, w.abort(ctx))
		}
	}
	_, err := w.d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &w.d.cfg.Bucket, Key: &w.key,
		UploadId: w.uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		return errors.Join(w.d.wrap(w.path, err), w.abort(ctx))
	}
	return nil
}

// Cancel discards the upload; the object stays as it was.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	return w.abort(ctx)
}

func (w *writer) abort(ctx context.Context) error {
	w.buf = nil
	if w.uploadID == nil {
		return nil
	}
	_, err := w.d.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &w.d.cfg.Bucket, Key: &w.key, UploadId: w.uploadID})
	if isNotFound(err) {
		return nil
	}
	return w.d.wrap(w.path, err)
}
