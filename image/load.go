package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"berth/archive"
	"berth/errdefs"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoadOptions tunes LoadImages.
type LoadOptions struct {
	// Progress, when set, hears how far the extraction of each new layer
	// has come, in bytes of its blob in the archive. It is called at most
	// every 512 KiB or 1% of a layer, and once when the layer is done.
	Progress func(LayerProgress)
}

// LayerProgress is one step of a layer's extraction.
type LayerProgress struct {
	DiffID  digest.Digest
	Current int64
	Total   int64
}

// LoadedImage is one image a load stored.
type LoadedImage struct {
	ID digest.Digest
	// Tags are the familiar names ("busybox:latest") the archive gave it,
	// all now pointing at ID; none for an untagged image.
	Tags []string
	// Replaced maps a tag that pointed at another image before the load to
	// that image's ID.
	Replaced map[string]digest.Digest
}

// Limits on what a load keeps in memory or accepts from an archive.
const (
	maxMetaSize     = 8 << 20 // manifest.json, index.json, repositories, oci-layout
	maxManifestSize = 4 << 20 // an OCI manifest or index blob
	maxEntries      = 1 << 16 // tar entries in one archive
	maxLinkHops     = 16      // symlinks followed to find an entry
	maxIndexDepth   = 4       // nested indexes followed
)

// LoadImages reads an image archive from src: what `docker save` writes
// (Docker 25+ OCI layout with manifest.json, or the legacy layout of
// per-layer directories), or a plain OCI image layout tar, each possibly
// compressed with gzip, zstd, xz or bzip2. It restores every tag the
// archive names.
//
// Entries may come in any order, so a load works in passes that keep
// memory flat whatever the archive's size:
//
//  1. every file goes into the content store as it passes (files named
//     blobs/sha256/<hex> are checked against that digest); only the small
//     metadata files are kept in memory, with a size limit;
//  2. the manifests are resolved against what was stored;
//  3. each new layer is extracted from the content store onto a snapshot
//     and checked against the config's diff ID;
//  4. images, layers and tags are recorded in one transaction.
//
// A failure at any step removes every blob, snapshot and record the load
// added: nothing is half-loaded. Blobs needed only during the load
// (manifests, compressed layers) are dropped at the end.
func (s *Service) LoadImages(ctx context.Context, src io.Reader, opts LoadOptions) (_ []LoadedImage, err error) {
	l := &loader{s: s, opts: opts, entries: map[string]archiveEntry{}, links: map[string]string{}, meta: map[string][]byte{}, added: map[digest.Digest]bool{}}
	defer func() {
		if err != nil {
			l.rollback(ctx)
		}
	}()
	if err := l.spool(ctx, src); err != nil {
		return nil, err
	}
	imgs, err := l.resolve(ctx)
	if err != nil {
		return nil, err
	}
	// Pinned, the layers this load finds in the store stay there until
	// its records use them, whatever an rmi meanwhile leaves unused.
	var chains []digest.Digest
	for _, img := range imgs {
		chains = append(chains, chainIDs(img.config.RootFS.DiffIDs)...)
	}
	unpin, _, err := s.pinLayers(ctx, chains)
	if err != nil {
		return nil, err
	}
	defer unpin()
	for _, img := range imgs {
		if err := l.unpack(ctx, img); err != nil {
			return nil, err
		}
	}
	out, err := l.record(ctx, imgs)
	if err != nil {
		return nil, err
	}
	l.dropScratch(ctx, imgs)
	return out, nil
}

// archiveEntry is a regular file of the archive, stored as a blob.
type archiveEntry struct {
	digest digest.Digest
	size   int64
}

// loader is the state of one load.
type loader struct {
	s       *Service
	opts    LoadOptions
	entries map[string]archiveEntry // regular files by clean name
	links   map[string]string       // symlinks and hard links: clean name -> clean target
	meta    map[string][]byte       // the top-level metadata files
	count   int

	added map[digest.Digest]bool // blobs this load created
	snaps []string               // snapshots this load committed, in order
}

// spool reads the whole archive once, storing its files.
func (l *loader) spool(ctx context.Context, src io.Reader) error {
	plain, _, err := archive.DecompressStream(src)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer plain.Close()
	tr := tar.NewReader(plain)
	buf := make([]byte, copyBufSize)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return archiveReadError(err)
		}
		if l.count++; l.count > maxEntries {
			return fmt.Errorf("load: archive has more than %d entries: %w", maxEntries, errdefs.ErrInvalidArgument)
		}
		if err := l.entry(ctx, hdr, tr, buf); err != nil {
			return err
		}
	}
	// Read to the end so that a compressed archive's trailer is checked
	// and a body being uploaded is consumed.
	if _, err := io.CopyBuffer(io.Discard, ctxReader{ctx, plain}, buf); err != nil {
		return archiveReadError(err)
	}
	return nil
}

func archiveReadError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("load: archive is truncated: %w: %w", err, errdefs.ErrInvalidArgument)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("load: archive is corrupt: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("load: read archive: %w", err)
}

func (l *loader) entry(ctx context.Context, hdr *tar.Header, tr *tar.Reader, buf []byte) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if hdr.Typeflag == tar.TypeDir && path.Clean(hdr.Name) == "." {
		return nil // the root, as `tar -C dir .` writes it
	}
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return nil
	case tar.TypeSymlink, tar.TypeLink:
		return l.link(name, hdr)
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers still emit '\x00'
	default:
		return fmt.Errorf("load: archive entry %s: unsupported type %q: %w", name, hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	delete(l.links, name)
	switch {
	case isMetaName(name):
		if hdr.Size > maxMetaSize {
			return fmt.Errorf("load: %s is %d bytes, more than the %d allowed: %w", name, hdr.Size, maxMetaSize, errdefs.ErrInvalidArgument)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return archiveReadError(err)
		}
		l.meta[name] = b
		return nil
	case isLegacyLayerMeta(name):
		// <v1 id>/json and VERSION describe layers the config describes too.
		return nil
	}
	expected, err := expectedDigest(name)
	if err != nil {
		return err
	}
	d, err := l.store(ctx, name, tr, hdr.Size, expected, buf)
	if err != nil {
		return err
	}
	l.entries[name] = archiveEntry{digest: d, size: hdr.Size}
	return nil
}

// cleanEntryName refuses names that would leave the archive's root: the
// archive itself is never extracted, but names are also how manifests
// point at files, and a name that climbs out is never a legitimate one.
func cleanEntryName(name string) (string, error) {
	trimmed := strings.TrimPrefix(name, "./")
	if trimmed == "" || path.IsAbs(trimmed) {
		return "", fmt.Errorf("load: archive entry %q: absolute or empty path: %w", name, errdefs.ErrInvalidArgument)
	}
	for _, part := range strings.Split(trimmed, "/") {
		if part == ".." {
			return "", fmt.Errorf("load: archive entry %q: path traversal: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return path.Clean(trimmed), nil
}

// link records a symlink or hard link as an alias of another entry:
// legacy `docker save` links layer.tar files of identical layers, podman
// links every layer.tar to a top-level <diff id>.tar.
func (l *loader) link(name string, hdr *tar.Header) error {
	target := hdr.Linkname
	if path.IsAbs(target) {
		return fmt.Errorf("load: archive entry %s: link to absolute path %q: %w", name, target, errdefs.ErrInvalidArgument)
	}
	if hdr.Typeflag == tar.TypeSymlink {
		target = path.Join(path.Dir(name), target)
	}
	target = path.Clean(target)
	if target == ".." || strings.HasPrefix(target, "../") {
		return fmt.Errorf("load: archive entry %s: link %q leaves the archive: %w", name, hdr.Linkname, errdefs.ErrInvalidArgument)
	}
	delete(l.entries, name)
	l.links[name] = target
	return nil
}

func isMetaName(name string) bool {
	switch name {
	case archiveManifest, archiveIndex, archiveRepositories, ocispec.ImageLayoutFile:
		return true
	}
	return false
}

func isLegacyLayerMeta(name string) bool {
	dir, file := path.Split(name)
	return dir != "" && !strings.Contains(strings.TrimSuffix(dir, "/"), "/") &&
		dir != ocispec.ImageBlobsDir+"/" && (file == "json" || file == "VERSION")
}

// expectedDigest is the digest a file under blobs/ is named by.
func expectedDigest(name string) (digest.Digest, error) {
	rest, ok := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/")
	if !ok {
		return "", nil
	}
	alg, hex, ok := strings.Cut(rest, "/")
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if !ok || strings.Contains(hex, "/") || d.Validate() != nil {
		return "", fmt.Errorf("load: archive entry %s: not a blob name (blobs/<algorithm>/<hex>): %w", name, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("load: archive entry %s: digest algorithm %s is not supported: %w", name, alg, errdefs.ErrInvalidArgument)
	}
	return d, nil
}

// store copies one file into the content store, verifying it against
// expected when the name gave a digest.
func (l *loader) store(ctx context.Context, name string, r io.Reader, size int64, expected digest.Digest, buf []byte) (digest.Digest, error) {
	ref := randomKey("load-")
	w, err := l.s.content.Writer(ctx, ref)
	if err != nil {
		return "", err
	}
	fail := func(err error) (digest.Digest, error) {
		w.Close()
		l.s.content.Abort(context.WithoutCancel(ctx), ref)
		return "", err
	}
	if _, err := io.CopyBuffer(w, ctxReader{ctx, r}, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(fmt.Errorf("load: archive entry %s: archive is truncated: %w", name, errdefs.ErrInvalidArgument))
		}
		return fail(fmt.Errorf("load: archive entry %s: %w", name, err))
	}
	got := w.Digest()
	if expected != "" && got != expected {
		return fail(fmt.Errorf("load: archive entry %s: digest mismatch: content is %s: %w", name, got, errdefs.ErrInvalidArgument))
	}
	err = w.Commit(ctx, size, "")
	switch {
	case err == nil:
		l.added[got] = true
	case errdefs.AlreadyExists(err):
	default:
		l.s.content.Abort(context.WithoutCancel(ctx), ref)
		return "", fmt.Errorf("load: archive entry %s: %w", name, err)
	}
	return got, nil
}

// lookup finds a regular file by the name a manifest uses, through links.
func (l *loader) lookup(name string) (archiveEntry, error) {
	clean, err := cleanEntryName(name)
	if err != nil {
		return archiveEntry{}, err
	}
	for range maxLinkHops {
		if e, ok := l.entries[clean]; ok {
			return e, nil
		}
		target, ok := l.links[clean]
		if !ok {
			return archiveEntry{}, fmt.Errorf("load: %s: not in the archive: %w", name, errdefs.ErrInvalidArgument)
		}
		clean = target
	}
	return archiveEntry{}, fmt.Errorf("load: %s: too many levels of links: %w", name, errdefs.ErrInvalidArgument)
}
