package apitest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"berth/errdefs"
	"berth/image"

	"github.com/opencontainers/go-digest"
)

// Archives is an in-memory ImageArchiveBackend with a toy archive format,
// for wire and CLI tests: a save is a tar with one entry per image, named
// by the name asked for and holding its ID; a load reads such a tar back.
// The real formats are the image service's and are tested there.
type Archives struct {
	mu sync.Mutex
	// Known maps the names Save accepts to image IDs.
	Known map[string]string
	// FailAfter makes Save fail after writing that many bytes (0: never).
	FailAfter int
	// Saved records every Save's names.
	Saved [][]string
}

// SaveImages writes one entry per name, refusing unknown names before
// writing anything, as the real service does.
func (a *Archives) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	a.mu.Lock()
	a.Saved = append(a.Saved, names)
	fail := a.FailAfter
	a.mu.Unlock()
	for _, n := range names {
		if _, ok := a.Known[n]; !ok {
			return errdefs.Errorf(errdefs.ErrNotFound, "No such image: %s", n)
		}
	}
	if fail > 0 {
		w = &failingWriter{w: w, left: fail}
	}
	tw := tar.NewWriter(w)
	for _, n := range names {
		id := a.Known[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(id))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, id); err != nil {
			return err
		}
	}
	return tw.Close()
}

type failingWriter struct {
	w    io.Writer
	left int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n, _ := f.w.Write(p[:f.left])
		f.left = 0
		return n, errors.New("disk on fire")
	}
	f.left -= len(p)
	return f.w.Write(p)
}

// LoadImages reads a toy archive: an entry "<tag>" holding an ID loads an
// image with that tag, "-" an untagged one. Like the real service it reads
// the whole archive before it reports anything. Each image's "layer" then
// reports progress in two steps. An entry named "bad" fails the load before
// any progress, one named "fail" after the progress of the entries before
// it.
func (a *Archives) LoadImages(ctx context.Context, src io.Reader, opts image.LoadOptions) ([]image.LoadedImage, error) {
	type entry struct{ name, body string }
	var entries []entry
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load: archive is corrupt: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if hdr.Name == "bad" {
			return nil, fmt.Errorf("load: manifest.json: unexpected end of JSON input: %w", errdefs.ErrInvalidArgument)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{hdr.Name, string(body)})
	}
	var out []image.LoadedImage
	for _, e := range entries {
		if e.name == "fail" {
			return nil, fmt.Errorf("load: layer %s: content does not match the config's diff ID: %w", digest.FromString("fail"), errdefs.ErrInvalidArgument)
		}
		if opts.Progress != nil {
			layer := digest.FromString(e.name)
			opts.Progress(image.LayerProgress{DiffID: layer, Current: 1 << 20, Total: 3 << 20})
			opts.Progress(image.LayerProgress{DiffID: layer, Current: 3 << 20, Total: 3 << 20})
		}
		img := image.LoadedImage{ID: digest.Digest(e.body)}
		if e.name != "-" {
			img.Tags = []string{e.name}
		}
		out = append(out, img)
	}
	return out, nil
}
