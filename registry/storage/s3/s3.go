// Package s3 is the S3 backend of registry/storage, for AWS S3 and
// S3-compatible object stores (MinIO, Ceph RGW, versitygw, …). Each storage
// path is the object key <prefix><path>; a directory is a key prefix ending
// in "/", present while objects are under it:
//
//	s3://<bucket>/<prefix>
//	  blobs/sha256/<hex>/link      one object per storage path
//	  data/<id>                    blob bytes (streamed in as multipart uploads)
//	  ...
//
// Put is one PutObject (atomic in S3). Writers upload parts of PartSize as
// bytes arrive and appear on Commit (CompleteMultipartUpload, or PutObject
// when small); Cancel aborts the upload. Appending to an object starts a
// multipart upload whose first parts are server-side copies of the object
// (UploadPartCopy), or its bytes when under the 5 MiB part minimum; Commit
// replaces the object with the whole. Readers resume an interrupted body
// from where it broke, pinned to the object's ETag.
//
// Every request goes through the SDK's standard retryer (exponential backoff
// with jitter for throttling, 5xx and network errors), with MaxAttempts
// attempts. Errors map to errdefs kinds: NotFound, PermissionDenied,
// Unavailable (throttled or failing after the retries), InvalidArgument.
package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"berth/errdefs"
	"berth/registry/storage"
)

// Config locates the bucket and says how to talk to it.
type Config struct {
	Bucket string
	Prefix string // key prefix, "" or ending in "/"
	Region string // default us-east-1
	// Endpoint is an S3-compatible server's URL; empty means AWS.
	Endpoint string
	// PathStyle addresses buckets as <endpoint>/<bucket> rather than
	// <bucket>.<endpoint>; most S3-compatible servers want it.
	PathStyle bool
	// AccessKey and SecretKey are static credentials; without them the
	// SDK's default chain is used (environment, shared files, instance
	// or pod roles).
	AccessKey, SecretKey, SessionToken string
	// MaxAttempts per request, retries included; zero means 5.
	MaxAttempts int
	// MaxBackoff caps the wait between attempts; zero means 10 s.
	MaxBackoff time.Duration
	// PartSize of multipart uploads; zero means 16 MiB, at least 5 MiB.
	PartSize int64
	// Redirect makes blob downloads redirect clients to pre-signed URLs
	// valid for RedirectExpiry (default 20 minutes).
	Redirect       bool
	RedirectExpiry time.Duration
}

// Driver stores objects in an S3 bucket.
type Driver struct {
	c       *s3.Client
	presign *s3.PresignClient
	cfg     Config
}

var (
	_ storage.Driver     = (*Driver)(nil)
	_ storage.Redirector = (*Driver)(nil)
	_ storage.Creator    = (*Driver)(nil)
)

const minPart = 5 << 20

// New returns a driver over cfg.Bucket; it checks the bucket answers.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3: bucket required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 16 << 20
	}
	if cfg.PartSize < minPart {
		return nil, fmt.Errorf("s3: part size %d under the 5 MiB minimum: %w", cfg.PartSize, errdefs.ErrInvalidArgument)
	}
	if cfg.RedirectExpiry <= 0 {
		cfg.RedirectExpiry = 20 * time.Minute
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
			})
		}),
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Digests are verified by the registry; trailing checksums are
		// not understood by every S3-compatible server.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	d := &Driver{c: c, presign: s3.NewPresignClient(c), cfg: cfg}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, d.wrap("bucket "+cfg.Bucket, err)
	}
	return d, nil
}

func (d *Driver) key(p string) (string, error) {
	if err := storage.ValidPath(p); err != nil {
		return "", err
	}
	return d.cfg.Prefix + p, nil
}

// Stat describes the object at p, or the prefix p/ when objects are under it.
func (d *Driver) Stat(ctx context.Context, p string) (storage.Info, error) {
	k, err := d.key(p)
	if err != nil {
		return storage.Info{}, err
	}
	out, err := d.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: &k})
	if err == nil {
		return storage.Info{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
	}
	if !isNotFound(err) {
		return storage.Info{}, d.wrap(p, err)
	}
	list, err := d.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &d.cfg.Bucket, Prefix: aws.String(k + "/"), MaxKeys: aws.Int32(1)})
	if err != nil {
		return storage.Info{}, d.wrap(p, err)
	}
	if len(list.Contents) == 0 {
		return storage.Info{}, fmt.Errorf("storage path %s: %w", p, errdefs.ErrNotFound)
	}
	return storage.Info{Path: p, IsDir: true}, nil
}

// Get reads the whole object at p.
func (d *Driver) Get(ctx context.Context, p string) ([]byte, error) {
	rc, err := d.Reader(ctx, p, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, d.wrap(p, err)
	}
	return b, nil
}

// Put writes the object at p in one request.
func (d *Driver) Put(ctx context.Context, p string, content []byte) error {
	k, err := d.key(p)
	if err != nil {
		return err
	}
	_, err = d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.cfg.Bucket, Key: &k, Body: bytes.NewReader(content),
		ContentLength: aws.Int64(int64(len(content)))})
	return d.wrap(p, err)
}

// Create writes the object at p unless it exists (If-None-Match: *). S3
// answers 409 ConditionalRequestConflict while another conditional write
// of the key is in flight; the outcome is then unknown, so Create asks
// again once that write has settled. A Create retried by the SDK after a
// lost response can report ErrAlreadyExists for its own object: callers
// read the object back to see whose it is.
func (d *Driver) Create(ctx context.Context, p string, content []byte) error {
	k, err := d.key(p)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		_, err = d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.cfg.Bucket, Key: &k, Body: bytes.NewReader(content),
			ContentLength: aws.Int64(int64(len(content))), IfNoneMatch: aws.String("*")})
		code := apiCode(err)
		if code == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed {
			return fmt.Errorf("storage path %s: %w", p, errdefs.ErrAlreadyExists)
		}
		if code != "ConditionalRequestConflict" || attempt == 4 {
			return d.wrap(p, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("storage path %s: %w", p, ctx.Err())
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
}

// List returns the sorted names directly under the prefix p/.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	k, err := d.key(p)
	if err != nil {
		return nil, err
	}
	prefix := k + "/"
	var names []string
	pages := s3.NewListObjectsV2Paginator(d.c, &s3.ListObjectsV2Input{Bucket: &d.cfg.Bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, d.wrap(p, err)
		}
		for _, cp := range page.CommonPrefixes {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
		for _, o := range page.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), prefix))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("storage path %s: %w", p, errdefs.ErrNotFound)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Delete removes the object p and every object under p/.
func (d *Driver) Delete(ctx context.Context, p string) error {
	k, err := d.key(p)
	if err != nil {
		return err
	}
	var keys []types.ObjectIdentifier
	if _, err := d.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: &k}); err == nil {
		keys = append(keys, types.ObjectIdentifier{Key: aws.String(k)})
	} else if !isNotFound(err) {
		return d.wrap(p, err)
	}
	pages := s3.NewListObjectsV2Paginator(d.c, &s3.ListObjectsV2Input{Bucket: &d.cfg.Bucket, Prefix: aws.String(k + "/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return d.wrap(p, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, types.ObjectIdentifier{Key: o.Key})
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("storage path %s: %w", p, errdefs.ErrNotFound)
	}
	for chunk := range slices.Chunk(keys, 1000) {
		if err := d.deleteKeys(ctx, p, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) deleteKeys(ctx context.Context, p string, keys []types.ObjectIdentifier) error {
	if len(keys) == 1 {
		_, err := d.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: keys[0].Key})
		if isNotFound(err) {
			return nil
		}
		return d.wrap(p, err)
	}
	out, err := d.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &d.cfg.Bucket,
		Delete: &types.Delete{Objects: keys, Quiet: aws.Bool(true)}})
	if err != nil {
		return d.wrap(p, err)
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			return fmt.Errorf("storage path %s: delete %s: %s %s: %w", p, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message), errdefs.ErrUnavailable)
		}
	}
	return nil
}

// RedirectURL returns a pre-signed GET URL for the object when redirects
// are configured.
func (d *Driver) RedirectURL(r *http.Request, p string) (string, error) {
	if !d.cfg.Redirect {
		return "", nil
	}
	k, err := d.key(p)
	if err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(r.Context(), &s3.GetObjectInput{Bucket: &d.cfg.Bucket, Key: &k},
		s3.WithPresignExpires(d.cfg.RedirectExpiry))
	if err != nil {
		return "", d.wrap(p, err)
	}
	return req.URL, nil
}
