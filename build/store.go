package build

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"berth/errdefs"
	"berth/image"
	"berth/mount"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketBuild = []byte("build")
	bucketCache = []byte("cache")
)

func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketBuild)
		if err == nil {
			_, err = b.CreateBucketIfNotExists(bucketCache)
		}
		if err != nil {
			return fmt.Errorf("build cache: %w", err)
		}
		return nil
	})
}

// stepKey is everything that decides what a step makes. Two steps with
// equal keys make the same image, so the second may reuse the first's.
type stepKey struct {
	Parent    digest.Digest
	CreatedBy string
	Author    string
	Config    any
	// Run is the environment, mounts and network a RUN ran with, which
	// its history line does not show.
	Run any `json:",omitempty"`
	// Extra is what else a step depends on: COPY's --chown and --chmod.
	Extra string `json:",omitempty"`
}

func (k stepKey) hash() (string, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("build cache key: %w", err)
	}
	return digest.FromBytes(b).Encoded(), nil
}

// cached returns the image a step with this key made before, if it is
// still stored; an entry whose image is gone is dropped.
func (b *Builder) cached(ctx context.Context, key string) (digest.Digest, bool) {
	var id digest.Digest
	b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBuild).Bucket(bucketCache).Get([]byte(key)); v != nil {
			id = digest.Digest(v)
		}
		return nil
	})
	if id == "" {
		return "", false
	}
	if _, err := b.images.Resolve(ctx, id.String()); err != nil {
		b.db.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBuild).Bucket(bucketCache)
			if string(c.Get([]byte(key))) == id.String() {
				return c.Delete([]byte(key))
			}
			return nil
		})
		return "", false
	}
	return id, true
}

func (b *Builder) remember(key string, id digest.Digest) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBuild).Bucket(bucketCache).Put([]byte(key), []byte(id))
	})
}

// forgetAll empties the cache (builder prune) and returns how many
// entries it had.
func (b *Builder) forgetAll() (int, error) {
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bucketBuild)
		n = bb.Bucket(bucketCache).Stats().KeyN
		if err := bb.DeleteBucket(bucketCache); err != nil {
			return err
		}
		_, err := bb.CreateBucket(bucketCache)
		return err
	})
	return n, err
}

// storeConfig stores cfg as a new image: parent's layers plus, when
// layerTar is set, one more layer read from that file (whose diff ID
// cfg.RootFS already lists last). It goes through LoadImages, the image
// store's way in for a config of any shape: a step that adds no layer
// (an empty-layer history entry, as Docker records ENV or CMD), or the
// first layer on scratch. Layers the store has are named by an empty
// placeholder: a load never reads the blob of a layer it already has.
func (b *Builder) storeConfig(ctx context.Context, parent digest.Digest, cfg *image.Config, layerTar string) (digest.Digest, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("image config: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeArchive(pw, parent, raw, len(cfg.RootFS.DiffIDs), layerTar))
	}()
	loaded, err := b.images.LoadImages(ctx, pr, image.LoadOptions{})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", fmt.Errorf("store image: %w", err)
	}
	if len(loaded) != 1 {
		return "", fmt.Errorf("store image: the store kept %d images of one", len(loaded))
	}
	return loaded[0].ID, nil
}

// writeArchive writes the docker-save archive storeConfig loads.
func writeArchive(w io.Writer, parent digest.Digest, config []byte, layers int, layerTar string) error {
	tw := tar.NewWriter(w)
	item := struct {
		Config   string
		RepoTags []string
		Layers   []string
		Parent   digest.Digest `json:",omitempty"`
	}{Config: "config.json", RepoTags: []string{}, Layers: []string{}, Parent: parent}
	known := layers
	if layerTar != "" {
		known--
	}
	if known > 0 {
		if err := tw.WriteHeader(&tar.Header{Name: "known", Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
	}
	for range known {
		item.Layers = append(item.Layers, "known")
	}
	if layerTar != "" {
		if err := addFile(tw, "layer.tar", layerTar); err != nil {
			return err
		}
		item.Layers = append(item.Layers, "layer.tar")
	}
	manifest, err := json.Marshal([]any{item})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// viewPrefix starts the keys of the snapshot views builds read images
// through; Cleanup removes those a crash left.
const viewPrefix = "build-view-"

// withRootfs calls fn with an image's root filesystem mounted read-only
// (an empty directory for scratch).
func (b *Builder) withRootfs(ctx context.Context, id digest.Digest, fn func(root string) error) error {
	top := ""
	if id != "" {
		var err error
		if top, err = b.images.TopLayer(ctx, id); err != nil {
			return err
		}
	}
	if top == "" {
		dir, err := os.MkdirTemp(b.tmpRoot(), "scratch-")
		if err != nil {
			return fmt.Errorf("scratch root: %w", err)
		}
		defer os.RemoveAll(dir)
		return fn(dir)
	}
	key := viewPrefix + randomHex(8)
	mounts, err := b.sn.View(ctx, key, top)
	if err != nil {
		return fmt.Errorf("image %s: view: %w", id, err)
	}
	defer b.sn.Remove(context.WithoutCancel(ctx), key)
	return mount.WithTempMount(ctx, mounts, fn)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// notFound reports whether err says an image is not in the store.
func notFound(err error) bool {
	return errors.Is(err, errdefs.ErrNotFound)
}
