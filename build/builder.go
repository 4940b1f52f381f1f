// Package build builds images from a Dockerfile the way Docker's classic
// builder does: every instruction of a stage makes an image on top of the
// previous one (an intermediate image, shown by `images -a`), RUN runs a
// real container through the container service and its filesystem changes
// become a layer, COPY and ADD write a layer of their own, and the other
// instructions change only the config (an empty-layer history entry).
//
// Beyond the classic builder, stages run as a graph: only the stages the
// target needs are built, and stages that do not depend on each other are
// built at once. Their output still reads in Dockerfile order.
//
// The cache maps what a step does to the image it made: the parent image,
// the step's resulting config and history line (which for COPY and ADD
// carries the digest of the files read), and for RUN the environment and
// mounts it ran with. A rebuild that finds a step's key, and the image it
// names still stored, reuses that image instead of running the step. It is
// kept in berth.db:
//
//	build/
//	  cache/
//	    <sha256 hex of the step key> -> image ID ("sha256:…")
//
// Files under the builder's root (<data-root>/build):
//
//	tmp/build-<random>/context.tar  a build's context as received, indexed
//	                                in memory, never extracted
//	tmp/build-<random>/…            downloads, context binds, first layers
//	                                on scratch; all removed when it ends
//	tmp/mnt-<random>/               an image mounted for RUN --mount from=
//	cache-mounts/<sha256 of the id>/  RUN --mount=type=cache directories
//
// Images are stored through the image service: a step with a layer by
// CommitImage, a step without one (and a first layer on scratch) by
// LoadImages of a small docker-save archive, the only way the image store
// takes a config of any shape. RUN steps run through the container
// service; their layer is the diff of the container's writable snapshot
// (keyed by the container's ID) without the mount points the runtime made.
package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"berth/container"
	"berth/image"
	"berth/mount"
	"berth/remote/credentials"
	"berth/snapshot"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Images is what the builder needs of the image store.
type Images interface {
	Resolve(ctx context.Context, name string) (digest.Digest, error)
	Config(ctx context.Context, id digest.Digest) (*image.Config, error)
	TopLayer(ctx context.Context, id digest.Digest) (string, error)
	// CommitImage stores a step that made a layer on top of an image.
	CommitImage(ctx context.Context, parent digest.Digest, cfg *image.Config, layer io.Reader, opts image.CommitOptions) (digest.Digest, error)
	// LoadImages stores steps that made no layer, and first layers on
	// scratch: it is the store's only way in for an arbitrary config.
	LoadImages(ctx context.Context, src io.Reader, opts image.LoadOptions) ([]image.LoadedImage, error)
	TagImage(ctx context.Context, source, target string) error
	PullImage(ctx context.Context, name string, opts image.PullOptions, progress image.ProgressFunc) error
}

// Containers is what RUN needs of the container service.
type Containers interface {
	ContainerCreate(ctx context.Context, opts container.CreateOptions) (ctypes.CreateResponse, error)
	ContainerAttach(ctx context.Context, name string, streams container.AttachStreams) error
	ContainerStart(ctx context.Context, name string) error
	ContainerWait(ctx context.Context, name string, condition ctypes.WaitCondition) (<-chan ctypes.WaitResponse, error)
	ContainerRemove(ctx context.Context, name string, opts container.RemoveOptions) error
}

// Options configures a Builder.
type Options struct {
	DB         *bolt.DB
	Root       string // <data-root>/build
	Images     Images
	Containers Containers
	// Snapshotter is the one the image and container services use: COPY
	// reads the parent image through a View, RUN diffs the container's
	// writable layer (whose key is the container's ID).
	Snapshotter snapshot.Snapshotter
	// HTTPClient fetches ADD <url> sources; nil uses one with timeouts.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Builder builds images. It is safe for concurrent builds.
type Builder struct {
	db     *bolt.DB
	root   string
	images Images
	ctrs   Containers
	sn     snapshot.Snapshotter
	http   *http.Client
	log    *slog.Logger
	mounts *cacheMounts
}

// New opens the builder's state.
func New(opts Options) (*Builder, error) {
	if err := initBuckets(opts.DB); err != nil {
		return nil, err
	}
	for _, dir := range []string{filepath.Join(opts.Root, "tmp"), filepath.Join(opts.Root, "cache-mounts")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("build root: %w", err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	return &Builder{db: opts.DB, root: opts.Root, images: opts.Images, ctrs: opts.Containers, sn: opts.Snapshotter,
		http: hc, log: log, mounts: newCacheMounts(filepath.Join(opts.Root, "cache-mounts"))}, nil
}

// Cleanup removes what builds interrupted by a crash left: scratch
// directories (unmounting what is mounted there first) and the
// snapshot views COPY and RUN read images through.
func (b *Builder) Cleanup(ctx context.Context) error {
	dir := filepath.Join(b.root, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("build root: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := mount.UnmountAll(p); err != nil {
			b.log.Warn("unmount stale build directory", "dir", p, "err", err)
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			b.log.Warn("remove stale build directory", "dir", p, "err", err)
		}
	}
	var views []string
	err = b.sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindView && strings.HasPrefix(info.Name, viewPrefix) {
			views = append(views, info.Name)
		}
		return nil
	})
	for _, v := range views {
		if rerr := b.sn.Remove(ctx, v); rerr != nil {
			b.log.Warn("remove stale build view", "key", v, "err", rerr)
		}
	}
	return err
}

// BuildOptions is one build, as POST /build describes it.
type BuildOptions struct {
	// Dockerfile is the Dockerfile's path in the context ("Dockerfile").
	Dockerfile string
	Tags       []string
	// BuildArgs are --build-arg values; a nil value leaves the ARG unset.
	BuildArgs map[string]*string
	Target    string
	Labels    map[string]string
	NoCache   bool
	Pull      bool
	// Remove removes intermediate containers after a successful step
	// (Docker's default); ForceRemove removes them also after a failure.
	Remove, ForceRemove bool
	// Platform is --platform; only the host's can run RUN steps.
	Platform string
	// Auth holds registry credentials by registry host, for the pulls of
	// FROM and COPY --from images (X-Registry-Config).
	Auth map[string]credentials.AuthConfig
	// HostConfig carries what RUN containers get from `build`'s flags:
	// network mode, resources, extra hosts, shm size, ulimits.
	HostConfig ctypes.HostConfig
}

// Event is one item of a build's output: Text for the "stream" of
// Docker's JSON messages, or a pull's progress.
type Event struct {
	Text     string
	Progress *image.Progress
	// ImageID is set once, on the built image, before "Successfully
	// built" (the API's aux message, which `build --iidfile` reads).
	ImageID digest.Digest
}

// Sink receives a build's output, one event at a time.
type Sink func(Event)

// Result is what a successful build made.
type Result struct {
	ID   digest.Digest
	Tags []string // familiar names, as tagged
}
