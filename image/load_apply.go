package image

import (
	"context"
	"fmt"
	"io"

	"berth/archive"
	"berth/content"
	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

// unpack makes sure every layer of img is a committed snapshot, extracting
// the ones that are not from the content store. Snapshots are committed
// before they are recorded (the next layer needs its parent committed);
// an unrecorded snapshot is invisible to layer GC, and rollback removes it.
func (l *loader) unpack(ctx context.Context, img *loadImage) error {
	diffIDs := img.config.RootFS.DiffIDs
	chains := chainIDs(diffIDs)
	for i, diffID := range diffIDs {
		chain := chains[i]
		if _, err := l.s.sn.Stat(ctx, chain.String()); err == nil {
			if err := l.ensureLayerTar(ctx, img.layers[i], diffID); err != nil {
				return err
			}
			continue
		} else if !errdefs.NotFound(err) {
			return fmt.Errorf("load: layer %s: %w", diffID, err)
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		if err := l.extractLayer(ctx, img.layers[i], diffID, parent, chain); err != nil {
			return err
		}
	}
	return nil
}

// layerSource opens a layer blob for reading as a plain tar, and says
// whether its bytes still have to be checked against the diff ID: a blob
// stored under the diff ID itself was verified when it was stored.
func (l *loader) layerSource(ctx context.Context, e archiveEntry, diffID digest.Digest, progress *progressReader) (io.ReadCloser, bool, error) {
	f, err := l.s.content.Open(ctx, e.digest)
	if err != nil {
		return nil, false, fmt.Errorf("load: layer %s: %w", diffID, err)
	}
	var r io.Reader = ctxReader{ctx, f}
	if progress != nil {
		progress.r = r
		r = progress
	}
	if e.digest == diffID {
		return readCloser{r, f.Close}, false, nil
	}
	plain, _, err := archive.DecompressStream(r)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("load: layer %s: %w", diffID, err)
	}
	return readCloser{plain, func() error { plain.Close(); return f.Close() }}, true, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// plainTarSink collects the uncompressed tar of a compressed layer: into
// the content store when it is not there yet (save needs it), else only
// into a digester.
type plainTarSink struct {
	w   *content.Writer
	ref string
	d   digest.Digester
}

func (l *loader) newSink(ctx context.Context, diffID digest.Digest) (*plainTarSink, error) {
	if _, err := l.s.content.Info(ctx, diffID); err == nil {
		return &plainTarSink{d: digest.SHA256.Digester()}, nil
	}
	ref := randomKey("load-")
	w, err := l.s.content.Writer(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &plainTarSink{w: w, ref: ref}, nil
}

func (k *plainTarSink) writer() io.Writer {
	if k.w != nil {
		return k.w
	}
	return k.d.Hash()
}

func (k *plainTarSink) digest() digest.Digest {
	if k.w != nil {
		return k.w.Digest()
	}
	return k.d.Digest()
}

// finish checks the tar's digest and keeps it; abort drops it.
func (k *plainTarSink) finish(ctx context.Context, l *loader, diffID digest.Digest) error {
	if got := k.digest(); got != diffID {
		k.abort(ctx, l)
		return fmt.Errorf("load: layer %s: content does not match the config's diff ID (it is %s): %w", diffID, got, errdefs.ErrInvalidArgument)
	}
	if k.w == nil {
		return nil
	}
	err := k.w.Commit(ctx, -1, diffID)
	switch {
	case err == nil:
		l.added[diffID] = true
	case errdefs.AlreadyExists(err):
	default:
		l.s.content.Abort(context.WithoutCancel(ctx), k.ref)
		return fmt.Errorf("load: layer %s: %w", diffID, err)
	}
	return nil
}

func (k *plainTarSink) abort(ctx context.Context, l *loader) {
	if k.w != nil {
		k.w.Close()
		l.s.content.Abort(context.WithoutCancel(ctx), k.ref)
	}
}

// extractLayer unpacks one layer onto parent and commits it as chain.
func (l *loader) extractLayer(ctx context.Context, e archiveEntry, diffID, parent, chain digest.Digest) error {
	var progress *progressReader
	if l.opts.Progress != nil {
		progress = &progressReader{total: e.size, diffID: diffID, report: l.opts.Progress}
	}
	src, check, err := l.layerSource(ctx, e, diffID, progress)
	if err != nil {
		return err
	}
	defer src.Close()
	var r io.Reader = src
	var sink *plainTarSink
	if check {
		if sink, err = l.newSink(ctx, diffID); err != nil {
			return err
		}
		r = io.TeeReader(src, sink.writer())
	}
	key, err := l.s.extract(ctx, parent, r)
	if err == nil {
		// The tar reader may stop before the stream's zero padding ends.
		_, err = io.Copy(io.Discard, r)
		if err != nil {
			l.s.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}
	if err == nil && sink != nil {
		if err = sink.finish(ctx, l, diffID); err != nil {
			l.s.sn.Remove(context.WithoutCancel(ctx), key)
			return err
		}
	}
	if err != nil {
		if sink != nil {
			sink.abort(ctx, l)
		}
		return fmt.Errorf("load: layer %s: %w", diffID, err)
	}
	if progress != nil {
		// A decompressor may stop at its trailer without reading to EOF.
		progress.current = progress.total
		progress.finish()
	}
	return l.commitSnapshot(ctx, key, chain)
}

// commitSnapshot publishes an extracted snapshot as chain, unless another
// load made that layer meanwhile.
func (l *loader) commitSnapshot(ctx context.Context, key string, chain digest.Digest) error {
	if _, err := l.s.sn.Stat(ctx, chain.String()); err == nil {
		return l.s.sn.Remove(ctx, key)
	}
	if err := l.s.sn.Commit(ctx, chain.String(), key); err != nil {
		l.s.sn.Remove(context.WithoutCancel(ctx), key)
		if errdefs.AlreadyExists(err) {
			return nil // committed by another load since the check
		}
		return fmt.Errorf("load: layer %s: %w", chain, err)
	}
	l.snaps = append(l.snaps, chain.String())
	return nil
}

// ensureLayerTar keeps the uncompressed tar of a layer whose snapshot
// exists already, for the rare case where the store lost it.
func (l *loader) ensureLayerTar(ctx context.Context, e archiveEntry, diffID digest.Digest) error {
	if _, err := l.s.content.Info(ctx, diffID); err == nil {
		return nil
	}
	src, _, err := l.layerSource(ctx, e, diffID, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	sink, err := l.newSink(ctx, diffID)
	if err != nil {
		return err
	}
	if _, err := io.Copy(sink.writer(), src); err != nil {
		sink.abort(ctx, l)
		return fmt.Errorf("load: layer %s: %w", diffID, err)
	}
	return sink.finish(ctx, l, diffID)
}

// progressReader reports how much of a layer blob was read.
type progressReader struct {
	r       io.Reader
	diffID  digest.Digest
	total   int64
	current int64
	last    int64
	done    bool
	report  func(LayerProgress)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.current += int64(n)
	step := min(int64(512<<10), p.total/100)
	if err != nil {
		p.finish()
	} else if p.current-p.last > step {
		p.last = p.current
		p.report(LayerProgress{DiffID: p.diffID, Current: p.current, Total: p.total})
	}
	return n, err
}

// finish reports the end of the layer, once.
func (p *progressReader) finish() {
	if !p.done {
		p.done = true
		p.report(LayerProgress{DiffID: p.diffID, Current: p.current, Total: p.total})
	}
}
