package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"berth/build/dockerfile"
	"berth/errdefs"
	"berth/image"

	"github.com/opencontainers/go-digest"
)

// emptyTar is the size of a layer tar without entries: the two zero
// blocks that end an archive.
const emptyTar = 1024

// storeLayer stores cfg plus the layer write produces as a child of the
// stage's current image; nop is the step's command, joined its history
// line. A layer without entries is recorded as Docker records it: an
// empty-layer history entry and no new diff ID.
func (s *stage) storeLayer(ctx context.Context, cfg *image.Config, nop []string, container string, write func(io.Writer) error) (digest.Digest, error) {
	createdBy := strings.Join(nop, " ")
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(pw))
	}()
	defer func() {
		// The writer reads from mounts the caller removes when we return.
		pr.CloseWithError(io.ErrClosedPipe)
		<-done
	}()
	br := bufio.NewReaderSize(pr, 64<<10)
	head, err := br.Peek(emptyTar + 1)
	switch {
	case len(head) == emptyTar && allZero(head) && errors.Is(err, io.EOF):
		c := s.child(cfg, createdBy, true)
		c.ContainerConfig, c.Container = containerConfig(cfg.Config, nop), container
		return s.j.b.storeConfig(ctx, s.id, c, "")
	case err != nil && !errors.Is(err, io.EOF):
		return "", err
	case s.id == "":
		return s.storeFirstLayer(ctx, cfg, nop, container, br)
	}
	c := cloneConfig(cfg)
	c.ContainerConfig = containerConfig(cfg.Config, nop)
	return s.j.b.images.CommitImage(ctx, s.id, c, br, image.CommitOptions{CreatedBy: createdBy, Author: cfg.Author, Container: container})
}

// storeFirstLayer stores the first layer of a stage on scratch, which has
// no parent image to commit onto.
func (s *stage) storeFirstLayer(ctx context.Context, cfg *image.Config, nop []string, container string, r io.Reader) (digest.Digest, error) {
	f, err := os.CreateTemp(s.j.work, "layer-")
	if err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	defer os.Remove(f.Name())
	dg := digest.Canonical.Digester()
	_, err = io.Copy(io.MultiWriter(f, dg.Hash()), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	c := s.child(cfg, strings.Join(nop, " "), false)
	c.ContainerConfig, c.Container = containerConfig(cfg.Config, nop), container
	c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, dg.Digest())
	return s.j.b.storeConfig(ctx, "", c, f.Name())
}

// workdir sets the working directory and, as Docker's WORKDIR does,
// creates it (owned by root) when the image lacks it.
func (s *stage) workdir(ctx context.Context, in *dockerfile.Workdir) error {
	p, err := s.word(in.Path)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot normalize nothing")
	}
	if !path.IsAbs(p) {
		p = path.Join("/", s.cfg.Config.WorkingDir, p)
	}
	p = path.Clean(p)
	cfg := cloneConfig(s.cfg)
	cfg.Config.WorkingDir = p
	nop := append(s.shell(), "#(nop) WORKDIR "+p)
	key := stepKey{Parent: s.id, CreatedBy: strings.Join(nop, " "), Author: cfg.Author, Config: cfg.Config}
	return s.commit(ctx, key, func(ctx context.Context) (digest.Digest, error) {
		var id digest.Digest
		err := s.j.b.withRootfs(ctx, s.id, func(root string) error {
			w := &layerWriter{root: root, op: &copyOp{}, now: time.Now().Truncate(time.Second), index: map[string]int{}}
			rel, err := w.resolve(p)
			if err != nil {
				return err
			}
			if err := w.mkdirs(rel); err != nil {
				return err
			}
			id, err = s.storeLayer(ctx, cfg, nop, "", func(out io.Writer) error { return w.emit(out, rel, nil) })
			return err
		})
		return id, err
	})
}
