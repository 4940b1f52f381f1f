package build

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"berth/build/dockerfile"
	"berth/container/spec"
	"berth/errdefs"
	"berth/image"
	"berth/version"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// stage builds one stage, step by step.
type stage struct {
	j      *job
	st     *dockerfile.Stage
	out    *stageOutput
	target bool

	id  digest.Digest // the current image; "" on scratch before a step
	cfg *image.Config
	// args are the ARGs declared in this stage so far: value, and whether
	// it has one.
	args   map[string]argValue
	cmdSet bool // a CMD of this stage set the command
	step   int  // the current step's number
	// inFrom: the steps run are FROM's ONBUILD triggers, whose images
	// Docker does not print one by one, only FROM's result.
	inFrom bool
}

type argValue struct {
	value string
	set   bool
}

func (s *stage) printf(format string, a ...any) {
	fmt.Fprintf(s.out, format, a...)
}

// printMetaArgs prints the ARGs before the first FROM as the first steps,
// as Docker does (they make no image).
func (s *stage) printMetaArgs() {
	for i, a := range s.j.df.MetaArgs {
		s.printf("Step %d/%d : %s\n", i+1, s.j.total, a.Position().Original)
	}
}

func (s *stage) build(ctx context.Context) error {
	s.args = map[string]argValue{}
	s.step = s.j.first[s.st.Index]
	if err := s.from(ctx); err != nil {
		return err
	}
	steps := s.st.Steps
	if s.target && len(s.j.opts.Labels) > 0 {
		steps = append(slices.Clone(steps), labelStep(s.j.opts.Labels))
	}
	for i, in := range steps {
		s.step = s.j.first[s.st.Index] + 1 + i
		if i == len(s.st.Steps) {
			s.step = s.j.total
		}
		s.printf("Step %d/%d : %s\n", s.step, s.j.total, in.Position().Original)
		if err := s.dispatch(ctx, in); err != nil {
			return s.fail(in, err)
		}
	}
	return nil
}

// fail gives a step's error the instruction's name, as Docker's
// "COPY failed: ..." does, unless it already says what failed or is one
// of the messages Docker prints as they are.
func (s *stage) fail(in dockerfile.Instruction, err error) error {
	if _, ok := err.(*ExitError); ok || ctxErr(err) {
		return err
	}
	kw, msg := in.Position().Keyword, err.Error()
	for _, p := range []string{kw + " ", s.j.df.File.Name + ":", "failed to process ", "invalid from flag value "} {
		if strings.HasPrefix(msg, p) {
			return err
		}
	}
	return fmt.Errorf("%s failed: %w", kw, err)
}

func ctxErr(err error) bool {
	return err == context.Canceled || err == context.DeadlineExceeded
}

// labelStep is the LABEL instruction `build --label` adds to the target.
func labelStep(labels map[string]string) *dockerfile.Label {
	l := &dockerfile.Label{Pos: dockerfile.Pos{Keyword: "LABEL"}}
	var words []string
	for _, k := range sortedKeys(labels) {
		l.Pairs = append(l.Pairs, dockerfile.KeyValue{Key: k, Value: "'" + strings.ReplaceAll(labels[k], "'", `'"'"'`) + "'"})
		words = append(words, fmt.Sprintf("%q=%q", k, labels[k]))
	}
	l.Original = "LABEL " + strings.Join(words, " ")
	return l
}

func (s *stage) dispatch(ctx context.Context, in dockerfile.Instruction) error {
	switch in := in.(type) {
	case *dockerfile.Run:
		return s.run(ctx, in)
	case *dockerfile.Copy:
		return s.copy(ctx, in)
	case *dockerfile.Workdir:
		return s.workdir(ctx, in)
	case *dockerfile.Arg:
		return s.arg(ctx, in)
	}
	return s.meta(ctx, in)
}

// lookup resolves variables in a stage's instructions: ENV wins over ARG.
func (s *stage) lookup(name string) (string, bool) {
	env := s.cfg.Config.Env
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == name {
			return v, true
		}
	}
	if a, ok := s.args[name]; ok && a.set {
		return a.value, true
	}
	return "", false
}

func (s *stage) word(w string) (string, error) {
	v, err := s.j.lex.Word(w, s.lookup)
	if err != nil {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "failed to process %q: %s", w, err.Error())
	}
	return v, nil
}

// shell is the stage's SHELL, /bin/sh -c by default.
func (s *stage) shell() []string {
	if len(s.cfg.Config.Shell) > 0 {
		return slices.Clone(s.cfg.Config.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// from starts the stage on its base: scratch, an earlier stage, or an
// image (pulled when missing, or always with --pull).
func (s *stage) from(ctx context.Context) error {
	f := s.st.From
	s.printf("Step %d/%d : %s\n", s.step, s.j.total, f.Original)
	name, err := s.j.lex.Word(f.Image, s.j.metaLookup)
	if err != nil {
		return fmt.Errorf("FROM: %w", errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error()))
	}
	if name == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "base name (%s) should not be blank", f.Image)
	}
	platform := s.j.opts.Platform
	if f.Platform != "" {
		if platform, err = s.j.lex.Word(f.Platform, s.j.metaLookup); err != nil {
			return fmt.Errorf("FROM --platform: %w", errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error()))
		}
	}
	switch d, ok := s.j.stageRef(name, s.st.Index); {
	case strings.EqualFold(name, "scratch"):
		s.cfg = scratchConfig(platform)
		s.defaultPath()
		return nil
	case ok:
		r := s.j.results[d]
		s.id, s.cfg = r.id, cloneConfig(r.cfg)
	default:
		id, err := s.j.baseImage(ctx, name, platform, s.out)
		if err != nil {
			return stageHint(name, err)
		}
		if err := s.adopt(ctx, id); err != nil {
			return err
		}
	}
	s.defaultPath()
	if err := s.onBuild(ctx); err != nil {
		return err
	}
	if s.id != "" {
		s.printf(" ---> %s\n", shortID(s.id))
	}
	return nil
}

// defaultPath gives a stage whose base sets no PATH the default one, as
// Docker's builder does: the images it makes carry it.
func (s *stage) defaultPath() {
	for _, e := range s.cfg.Config.Env {
		if strings.HasPrefix(e, "PATH=") {
			return
		}
	}
	s.cfg.Config.Env = append(s.cfg.Config.Env, "PATH="+spec.DefaultPath)
}

func scratchConfig(platform string) *image.Config {
	c := &image.Config{}
	c.OS, c.Architecture = "linux", runtime.GOARCH
	if platform != "" {
		c.OS, c.Architecture, c.Variant = splitPlatform(platform)
	}
	c.RootFS.Type = "layers"
	return c
}

// baseImage finds a FROM or COPY --from image, pulling it when it is not
// stored or when the build asked to --pull.
func (j *job) baseImage(ctx context.Context, name, platform string, out *stageOutput) (digest.Digest, error) {
	ref, err := image.ParseReference(name)
	if err != nil {
		return "", err
	}
	if !j.opts.Pull {
		id, err := j.b.images.Resolve(ctx, name)
		if err == nil {
			err = j.checkPlatform(ctx, name, id, platform)
		}
		// A stored image for another platform is missing too, as in
		// Docker: the registry may have the one asked for.
		if err == nil || !notFound(err) {
			return id, err
		}
	}
	auth := j.opts.Auth[reference.Domain(ref)]
	if err := j.b.images.PullImage(ctx, name, image.PullOptions{Platform: platform, Auth: auth}, out.progress); err != nil {
		return "", err
	}
	id, err := j.b.images.Resolve(ctx, name)
	if err != nil {
		return "", err
	}
	return id, j.checkPlatform(ctx, name, id, platform)
}

func (j *job) checkPlatform(ctx context.Context, name string, id digest.Digest, platform string) error {
	if platform == "" {
		return nil
	}
	cfg, err := j.b.images.Config(ctx, id)
	if err != nil {
		return err
	}
	os, arch, variant := splitPlatform(strings.ToLower(platform))
	if cfg.OS != os || cfg.Architecture != arch || (variant != "" && cfg.Variant != variant) {
		have := cfg.OS + "/" + cfg.Architecture
		if cfg.Variant != "" {
			have += "/" + cfg.Variant
		}
		return errdefs.Errorf(errdefs.ErrNotFound, "image with reference %s was found but does not match the specified platform: wanted %s, actual: %s", name, platform, have)
	}
	return nil
}

// adopt makes id the stage's current image.
func (s *stage) adopt(ctx context.Context, id digest.Digest) error {
	cfg, err := s.j.b.images.Config(ctx, id)
	if err != nil {
		return err
	}
	s.id, s.cfg = id, cfg
	return nil
}

// onBuild runs the base image's ONBUILD triggers, which are not
// inherited further.
func (s *stage) onBuild(ctx context.Context) error {
	triggers := s.cfg.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	s.cfg.Config.OnBuild = nil
	plural := "s"
	if len(triggers) == 1 {
		plural = ""
	}
	s.printf("# Executing %d build trigger%s\n", len(triggers), plural)
	s.inFrom = true
	defer func() { s.inFrom = false }()
	for _, t := range triggers {
		f, err := dockerfile.Parse(s.j.df.File.Name, strings.NewReader(t))
		if err != nil {
			return fmt.Errorf("ONBUILD trigger %q: %w", t, err)
		}
		for _, n := range f.Nodes {
			in, err := dockerfile.NewInstruction(n)
			if err != nil {
				return fmt.Errorf("ONBUILD trigger %q: %w", t, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error()))
			}
			if err := s.dispatch(ctx, in); err != nil {
				return s.fail(in, err)
			}
		}
	}
	return nil
}

// commit finishes a step: it reuses the image a step with the same key
// made before, or makes one with exec and remembers it.
func (s *stage) commit(ctx context.Context, key stepKey, exec func(context.Context) (digest.Digest, error)) error {
	k, err := key.hash()
	if err != nil {
		return err
	}
	if !s.j.opts.NoCache {
		if id, ok := s.j.b.cached(ctx, k); ok {
			s.j.b.log.Debug("build step cached", "step", s.step, "image", id)
			s.printf(" ---> Using cache\n")
			if err := s.adopt(ctx, id); err != nil {
				return err
			}
			s.printID(id)
			return nil
		}
	}
	start := time.Now()
	id, err := exec(ctx)
	if err != nil {
		return err
	}
	s.j.b.log.Debug("build step", "step", s.step, "image", id, "elapsed", time.Since(start))
	if err := s.j.b.remember(k, id); err != nil {
		return err
	}
	if err := s.adopt(ctx, id); err != nil {
		return err
	}
	s.printID(id)
	return nil
}

// printID ends a step's output with the image it made.
func (s *stage) printID(id digest.Digest) {
	if !s.inFrom {
		s.printf(" ---> %s\n", shortID(id))
	}
}

// child is the config of the image a step makes: the current one with a
// new history entry and the build's bookkeeping fields.
func (s *stage) child(cfg *image.Config, createdBy string, emptyLayer bool) *image.Config {
	now := time.Now().UTC()
	c := cloneConfig(cfg)
	c.Created = &now
	c.History = append(c.History, ocispec.History{Created: &now, CreatedBy: createdBy, Author: c.Author, EmptyLayer: emptyLayer})
	c.Parent = s.id.String()
	c.DockerVersion = "berth " + version.Version
	c.Container, c.Comment = "", ""
	return c
}

// containerConfig is what Docker records as an image's container_config:
// the config with the step's command.
func containerConfig(cfg dockerspec.DockerOCIImageConfig, cmd []string) *dockerspec.DockerOCIImageConfig {
	c := cloneImageConfig(cfg)
	c.Cmd = cmd
	return &c
}
