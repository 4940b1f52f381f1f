package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"berth/build/dockerfile"
	"berth/errdefs"
	"berth/image"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// job is one build.
type job struct {
	b     *Builder
	opts  BuildOptions
	df    *dockerfile.Dockerfile
	bc    *ctxTree
	work  string // the build's scratch directory
	lex   dockerfile.Lex
	total int   // the M of "Step N/M"
	first []int // the step number of each stage's FROM
	meta  map[string]string
	// results are the built stages' images, by stage index.
	results []*stageResult

	mu   sync.Mutex
	used map[string]bool // build args some ARG declared
}

type stageResult struct {
	done chan struct{}
	id   digest.Digest // "" for a scratch stage without instructions
	cfg  *image.Config
}

func (b *Builder) tmpRoot() string { return filepath.Join(b.root, "tmp") }

// Build builds the image a Dockerfile describes from the context in body
// (a tar, or a bare Dockerfile), reporting progress to sink.
func (b *Builder) Build(ctx context.Context, opts BuildOptions, body io.Reader, sink Sink) (*Result, error) {
	start := time.Now()
	tags, err := parseTags(opts.Tags)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(b.tmpRoot(), "build-")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(work)
	bc, err := receiveContext(ctx, body, filepath.Join(work, "context.tar"), opts.Dockerfile)
	if err != nil {
		return nil, err
	}
	// Read the body to its end: only then does the HTTP server watch the
	// connection, and cancel the build when the client goes away.
	if _, err := io.Copy(io.Discard, body); err != nil {
		bc.Close()
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer bc.Close()
	name, src, err := bc.readDockerfile(opts.Dockerfile)
	if err != nil {
		return nil, err
	}
	if err := bc.applyIgnore(); err != nil {
		return nil, err
	}
	df, err := dockerfile.Read(displayName(name), bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	b.log.Debug("build context ready", "dockerfile", name, "elapsed", time.Since(start))
	j := &job{b: b, opts: opts, df: df, bc: bc, work: work, lex: dockerfile.Lex{Escape: df.File.Directives.Escape},
		used: map[string]bool{}}
	for _, w := range df.File.Warnings {
		sink(Event{Text: "[WARNING]: " + w + "\n"})
	}
	id, err := j.run(ctx, sink)
	if err != nil {
		return nil, err
	}
	b.log.Debug("build done", "image", id, "elapsed", time.Since(start))
	if unused := j.unusedArgs(); len(unused) > 0 {
		sink(Event{Text: fmt.Sprintf("[Warning] One or more build-args %v were not consumed\n", unused)})
	}
	sink(Event{ImageID: id})
	sink(Event{Text: fmt.Sprintf("Successfully built %s\n", shortID(id))})
	res := &Result{ID: id}
	for _, t := range tags {
		if err := b.images.TagImage(ctx, id.String(), t.String()); err != nil {
			return nil, err
		}
		name := reference.FamiliarString(t)
		res.Tags = append(res.Tags, name)
		sink(Event{Text: fmt.Sprintf("Successfully tagged %s\n", name)})
	}
	return res, nil
}

// displayName is how errors name the Dockerfile: its path in the context,
// or "Dockerfile" for one the docker CLI added from stdin under a random
// name.
func displayName(rel string) string {
	if strings.HasPrefix(path.Base(rel), ".dockerfile.") {
		return "Dockerfile"
	}
	return rel
}

func parseTags(tags []string) ([]reference.Named, error) {
	var out []reference.Named
	for _, t := range tags {
		ref, err := image.ParseReference(t)
		if err != nil {
			return nil, fmt.Errorf("invalid tag %q: %w", t, err)
		}
		if _, ok := ref.(reference.Digested); ok {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid tag %q: a tag cannot name a digest", t)
		}
		out = append(out, ref)
	}
	return out, nil
}

func shortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// run builds the target stage and the stages it needs.
func (j *job) run(ctx context.Context, sink Sink) (digest.Digest, error) {
	if err := j.resolveMeta(); err != nil {
		return "", err
	}
	target := j.df.Stages[len(j.df.Stages)-1]
	if j.opts.Target != "" {
		s, ok := j.df.Stage(j.opts.Target)
		if !ok {
			return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "failed to reach build target %s in Dockerfile", j.opts.Target)
		}
		target = s
	}
	j.numberSteps(target.Index)
	deps, err := j.dependencies()
	if err != nil {
		return "", err
	}
	needed := neededStages(deps, target.Index)
	out := newOrdered(sink, len(needed))
	j.results = make([]*stageResult, len(j.df.Stages))
	for _, i := range needed {
		j.results[i] = &stageResult{done: make(chan struct{})}
	}
	if err := j.schedule(ctx, needed, deps, target.Index, out); err != nil {
		out.flushAll()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", err
	}
	final := j.results[target.Index]
	if final.id == "" {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "No image was generated. Is your Dockerfile empty?")
	}
	return final.id, nil
}

// schedule builds the needed stages, each once the stages it reads are
// built, a few at a time; the first failure cancels the others.
func (j *job) schedule(ctx context.Context, needed []int, deps map[int][]int, target int, out *ordered) error {
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, parallelStages())
	for n, i := range needed {
		g.Go(func() error {
			for _, d := range deps[i] {
				select {
				case <-j.results[d].done:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			select {
			case slots <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-slots }()
			st := &stage{j: j, st: j.df.Stages[i], out: out.stages[n], target: i == target}
			if n == 0 {
				st.printMetaArgs()
			}
			if err := st.build(gctx); err != nil {
				return err
			}
			j.results[i].id, j.results[i].cfg = st.id, st.cfg
			close(j.results[i].done)
			out.stages[n].finish()
			return nil
		})
	}
	return g.Wait()
}

// parallelStages bounds the stages built at once.
func parallelStages() int {
	return min(4, max(2, runtime.NumCPU()))
}

// numberSteps counts instructions as Docker does: the ARGs before the
// first FROM, then every instruction of every stage up to the target,
// FROMs included, plus the LABEL that --label adds.
func (j *job) numberSteps(target int) {
	n := 1 + len(j.df.MetaArgs)
	for _, s := range j.df.Stages[:target+1] {
		j.first = append(j.first, n)
		n += 1 + len(s.Steps)
	}
	j.total = n - 1
	if len(j.opts.Labels) > 0 {
		j.total++
	}
}

// neededStages returns the target and every stage it depends on, in
// Dockerfile order.
func neededStages(deps map[int][]int, target int) []int {
	seen := map[int]bool{}
	var visit func(int)
	visit = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, d := range deps[i] {
			visit(d)
		}
	}
	visit(target)
	var out []int
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// dependencies lists, for each stage, the earlier stages it reads: its
// FROM, COPY --from and RUN --mount from=.
func (j *job) dependencies() (map[int][]int, error) {
	deps := map[int][]int{}
	for _, s := range j.df.Stages {
		add := func(name string) {
			if d, ok := j.stageRef(name, s.Index); ok && !slices.Contains(deps[s.Index], d) {
				deps[s.Index] = append(deps[s.Index], d)
			}
		}
		base, err := j.lex.Word(s.From.Image, j.metaLookup)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", j.df.File.Name, s.From.Line, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error()))
		}
		add(base)
		for _, in := range s.Steps {
			switch in := in.(type) {
			case *dockerfile.Copy:
				if in.From != "" {
					from, err := j.lex.Word(in.From, j.metaLookup)
					if err == nil {
						add(from)
					}
				}
			case *dockerfile.Run:
				for _, m := range in.Mounts {
					if spec, err := parseMount(m); err == nil && spec.From != "" {
						add(spec.From)
					}
				}
			}
		}
	}
	return deps, nil
}

// stageRef finds the stage a name refers to from stage `from`: an earlier
// stage's AS name, or the index of an earlier stage.
func (j *job) stageRef(name string, from int) (int, bool) {
	s, ok := j.df.Stage(name)
	if !ok || s.Index >= from {
		return 0, false
	}
	return s.Index, true
}
