package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"berth/archive"
	"berth/errdefs"
	"berth/mount"

	"github.com/opencontainers/go-digest"
)

func randomKey(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// extract applies an uncompressed layer stream onto a new Active snapshot
// whose parent is the committed layer parent ("" for a base layer) and
// returns its key. The snapshot is removed again on failure.
//
// Where the snapshot is an overlay, the tar goes straight into the upperdir
// with overlay whiteouts, so no mount is needed; a plain writable directory
// (vfs) takes it with deleting whiteouts; anything else (btrfs) is mounted
// for the duration.
func (s *Service) extract(ctx context.Context, parent digest.Digest, r io.Reader) (string, error) {
	key := randomKey("extract-")
	mounts, err := s.sn.Prepare(ctx, key, parent.String())
	if err != nil {
		return "", fmt.Errorf("layer on %s: %w", shortOr(parent), err)
	}
	err = applyMounts(ctx, mounts, r)
	if err != nil {
		if rerr := s.sn.Remove(context.WithoutCancel(ctx), key); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", err
	}
	return key, nil
}

func applyMounts(ctx context.Context, mounts []mount.Mount, r io.Reader) error {
	if o, ok := mount.OverlayOf(mounts); ok && o.Upper != "" {
		_, err := archive.Apply(ctx, o.Upper, r, archive.ApplyOptions{Mode: archive.WhiteoutOverlay})
		return err
	}
	if dir, ro, ok := mount.BindOf(mounts); ok && !ro {
		_, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{Mode: archive.WhiteoutDelete})
		return err
	}
	return mount.WithTempMount(ctx, mounts, func(root string) error {
		_, err := archive.Apply(ctx, root, r, archive.ApplyOptions{Mode: archive.WhiteoutDelete})
		return err
	})
}

// commitLayer makes the extracted snapshot key the committed layer chainID,
// or drops it when that layer exists already (two pulls of one layer). The
// caller holds layerMu shared until the layer is recorded.
func (s *Service) commitLayer(ctx context.Context, key string, chainID digest.Digest) error {
	if _, err := s.sn.Stat(ctx, chainID.String()); err == nil {
		return s.sn.Remove(ctx, key)
	} else if !errdefs.NotFound(err) {
		return err
	}
	if err := s.sn.Commit(ctx, chainID.String(), key); err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	return nil
}

func shortOr(d digest.Digest) string {
	if d == "" {
		return "scratch"
	}
	return shortID(d)
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
