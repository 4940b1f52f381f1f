package build

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

// maxErrorBody bounds what a failed download's body adds to the error.
const maxErrorBody = 1 << 10

// download fetches an ADD <url> source into the build's scratch directory.
// The file gets mode 0600 and the server's Last-Modified time, as in
// Docker; with --checksum its digest must match.
func (j *job) download(ctx context.Context, rawURL, checksum string) (source, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return source{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "ADD %s: %v", rawURL, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return source{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot determine filename from url: %s", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return source{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "ADD %s: %v", rawURL, err)
	}
	resp, err := j.b.http.Do(req)
	if err != nil {
		return source{}, fmt.Errorf("failed to GET %s: %w: %w", rawURL, err, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return source{}, errdefs.Errorf(errdefs.ErrNotFound, "failed to GET %s with status %s: %s", rawURL, resp.Status, body)
	}
	f, err := os.CreateTemp(j.work, "download-")
	if err != nil {
		return source{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	dg := digest.Canonical.Digester()
	_, err = io.Copy(io.MultiWriter(f, dg.Hash()), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return source{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if checksum != "" && dg.Digest().String() != checksum {
		return source{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "ADD %s: digest mismatch %s: %s", rawURL, dg.Digest(), checksum)
	}
	// Docker's time for a download: Last-Modified, else the epoch.
	mtime := time.Unix(0, 0)
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = t
	}
	if err := os.Chtimes(f.Name(), mtime, mtime); err != nil {
		return source{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	fi, err := os.Stat(f.Name())
	if err != nil {
		return source{}, err
	}
	return source{tree: dirTree{j.work}, rel: filepath.Base(f.Name()), name: name, info: fi, mode: 0o600}, nil
}
