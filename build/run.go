package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"berth/archive"
	"berth/build/dockerfile"
	"berth/container"
	"berth/errdefs"
	"berth/mount"
	"berth/snapshot"

	ctypes "github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/go-digest"
)

// ExitError is a RUN whose command failed; Code is its exit status.
type ExitError struct {
	Cmd  string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.Cmd, e.Code)
}

// runKey is what a RUN ran with beyond its history line.
type runKey struct {
	Env     []string
	Mounts  []mountSpec
	Network string
}

// runStep is a RUN resolved against the stage: its command, environment
// and mounts.
type runStep struct {
	argv    []string
	nop     []string // argv with the |N build-arg prefix: the history line
	env     []string
	mounts  []mountSpec
	network string
	script  *dockerfile.Heredoc // a `RUN <<EOF` script with a #! line
}

func (s *stage) run(ctx context.Context, in *dockerfile.Run) error {
	if in.Security != "" && in.Security != "sandbox" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "RUN --security=%s: only sandbox is allowed without BuildKit's entitlements", in.Security)
	}
	r := &runStep{network: in.Network}
	switch r.network {
	case "", "default", "none", "host":
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "RUN --network=%s: must be default, none or host", r.network)
	}
	r.argv, r.script = s.runArgv(in)
	for _, m := range in.Mounts {
		spec, err := parseMount(m)
		if err != nil {
			return err
		}
		if spec.From != "" {
			if spec.From, err = s.word(spec.From); err != nil {
				return err
			}
		}
		r.mounts = append(r.mounts, spec)
	}
	args := s.runArgs()
	r.env = append(append([]string{}, s.cfg.Config.Env...), args...)
	r.nop = r.argv
	if len(args) > 0 {
		r.nop = append(append([]string{"|" + strconv.Itoa(len(args))}, args...), r.argv...)
	}
	for _, k := range sortedKeys(s.j.opts.BuildArgs) {
		if v := s.j.opts.BuildArgs[k]; proxyArgs[k] && v != nil && !s.declared(k) {
			r.env = append(r.env, k+"="+*v)
		}
	}
	key := stepKey{Parent: s.id, CreatedBy: strings.Join(r.nop, " "), Author: s.cfg.Author, Config: s.cfg.Config,
		Run: runKey{Env: withoutProxies(r.env), Mounts: r.mounts, Network: r.network}}
	return s.commit(ctx, key, func(ctx context.Context) (digest.Digest, error) {
		return s.execRun(ctx, r)
	})
}

func (s *stage) declared(name string) bool {
	_, ok := s.args[name]
	return ok
}

func withoutProxies(env []string) []string {
	var out []string
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); !proxyArgs[k] {
			out = append(out, e)
		}
	}
	return out
}

// runArgs are the declared ARGs with values that no ENV overrides, as
// "K=V", sorted: RUN's environment gets them, its history line shows them.
func (s *stage) runArgs() []string {
	var out []string
	for k, a := range s.args {
		if !a.set {
			continue
		}
		overridden := false
		for _, e := range s.cfg.Config.Env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				overridden = true
			}
		}
		if !overridden {
			out = append(out, k+"="+a.value)
		}
	}
	sort.Strings(out)
	return out
}

// runArgv builds the command: the exec form as written, or the shell
// with the script. Heredocs are handed to the shell with the script,
// except a lone `RUN <<EOF`, whose body is the script itself (run as a
// file when it starts with #!).
func (s *stage) runArgv(in *dockerfile.Run) ([]string, *dockerfile.Heredoc) {
	if in.Exec {
		return append([]string{}, in.Args...), nil
	}
	script := in.Script
	if len(in.Heredocs) == 1 && isLoneHeredoc(script, in.Heredocs[0].Name) {
		h := in.Heredocs[0]
		if strings.HasPrefix(h.Content, "#!") {
			return []string{"/dev/pipes/" + h.Name}, &h
		}
		return append(s.shell(), h.Content), nil
	}
	for _, h := range in.Heredocs {
		script += "\n" + h.Content + h.Name
	}
	return append(s.shell(), script), nil
}

func isLoneHeredoc(script, name string) bool {
	w := strings.TrimSpace(script)
	for _, q := range []string{"", `"`, "'"} {
		if w == "<<"+q+name+q || w == "<<-"+q+name+q {
			return true
		}
	}
	return false
}

// execRun runs the step's container, turns its changes into a layer and
// removes it as `build --rm` and `--force-rm` say. A cancelled build
// always removes it.
func (s *stage) execRun(ctx context.Context, r *runStep) (_ digest.Digest, err error) {
	if s.id == "" {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "RUN needs a base image: this stage is still empty (FROM scratch)")
	}
	mounts, release, err := s.setupMounts(ctx, r)
	if err != nil {
		return "", err
	}
	defer release()
	id, err := s.createRunContainer(ctx, r, mounts)
	if err != nil {
		return "", err
	}
	short := id[:12]
	defer func() {
		remove := ctx.Err() != nil || (err == nil && s.j.opts.Remove) || (err != nil && s.j.opts.ForceRemove)
		if !remove {
			return
		}
		rmErr := s.j.b.ctrs.ContainerRemove(context.WithoutCancel(ctx), id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if rmErr != nil {
			s.j.b.log.Warn("remove build container", "container", id, "err", rmErr)
		} else if ctx.Err() == nil {
			s.printf("Removing intermediate container %s\n", short)
		}
	}()
	s.printf(" ---> Running in %s\n", short)
	if err := s.runContainer(ctx, id, r.argv); err != nil {
		return "", err
	}
	top, err := s.j.b.images.TopLayer(ctx, s.id)
	if err != nil {
		return "", err
	}
	targets := []string{"dev/pipes"}
	for _, m := range mounts {
		targets = append(targets, m.Target)
	}
	for v := range s.cfg.Config.Volumes {
		targets = append(targets, v)
	}
	return s.storeLayer(ctx, s.cfg, r.nop, id, func(w io.Writer) error {
		return s.j.b.containerDiff(ctx, id, top, targets, w)
	})
}

func (s *stage) createRunContainer(ctx context.Context, r *runStep, mounts []mounttypes.Mount) (string, error) {
	cfg := &ctypes.Config{
		Image: s.id.String(), Cmd: r.argv, Entrypoint: []string{""}, Env: r.env,
		User: s.cfg.Config.User, WorkingDir: s.cfg.Config.WorkingDir, AttachStdout: true, AttachStderr: true,
	}
	hc := s.j.opts.HostConfig
	hc.Mounts = append(append([]mounttypes.Mount{}, hc.Mounts...), mounts...)
	hc.AutoRemove = false
	switch r.network {
	case "none", "host":
		hc.NetworkMode = ctypes.NetworkMode(r.network)
	case "default":
		hc.NetworkMode = "default"
	}
	resp, err := s.j.b.ctrs.ContainerCreate(ctx, container.CreateOptions{Config: cfg, HostConfig: &hc})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// runContainer starts the container with its output going to the build's
// and waits for it to exit.
func (s *stage) runContainer(ctx context.Context, id string, argv []string) error {
	attached := make(chan struct{})
	attachErr := make(chan error, 1)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		attachErr <- s.j.b.ctrs.ContainerAttach(actx, id, container.AttachStreams{
			Stdout: s.out, Stderr: s.out, Stream: true, Attached: func() { close(attached) },
		})
	}()
	select {
	case <-attached:
	case err := <-attachErr:
		return fmt.Errorf("attach to build container: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	waitc, err := s.j.b.ctrs.ContainerWait(ctx, id, ctypes.WaitConditionNextExit)
	if err != nil {
		return err
	}
	if err := s.j.b.ctrs.ContainerStart(ctx, id); err != nil {
		return err
	}
	var res ctypes.WaitResponse
	select {
	case res = <-waitc:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-attachErr: // the output is all written
	case <-ctx.Done():
		return ctx.Err()
	}
	if res.Error != nil && res.Error.Message != "" {
		return fmt.Errorf("build container %s: %s", id[:12], res.Error.Message)
	}
	if res.StatusCode != 0 {
		return &ExitError{Cmd: strings.Join(argv, " "), Code: int(res.StatusCode)}
	}
	return nil
}

// containerDiff writes the changes a RUN container made as a layer tar,
// without the mount points the runtime created (see layerMask). The
// container service keys a container's writable snapshot by the
// container's ID; the snapshot's parent must be the image's top layer.
func (b *Builder) containerDiff(ctx context.Context, id, parentTop string, targets []string, w io.Writer) error {
	info, err := b.sn.Stat(ctx, id)
	if err != nil {
		return fmt.Errorf("build container %s: writable layer: %w", id, err)
	}
	if info.Kind != snapshot.KindActive || info.Parent != parentTop {
		return fmt.Errorf("build container %s: writable layer %s is not on the image's top layer: %w", id, info.Kind, errdefs.ErrFailedPrecondition)
	}
	mounts, err := b.sn.Mounts(ctx, id)
	if err != nil {
		return err
	}
	diff := func(lower string, out io.Writer) error {
		if o, ok := mount.OverlayOf(mounts); ok && o.Upper != "" {
			return archive.Diff(ctx, out, "", o.Upper, archive.WhiteoutOverlay)
		}
		if dir, _, ok := mount.BindOf(mounts); ok {
			return archive.Diff(ctx, out, lower, dir, archive.WhiteoutDelete)
		}
		return mount.WithTempMount(ctx, mounts, func(root string) error {
			return archive.Diff(ctx, out, lower, root, archive.WhiteoutDelete)
		})
	}
	masked := func(lower string) error {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pw.CloseWithError(diff(lower, pw))
		}()
		err := newLayerMask(w, lower, targets).filter(pr)
		pr.CloseWithError(io.ErrClosedPipe)
		<-done
		return err
	}
	if parentTop == "" {
		return masked("")
	}
	key := viewPrefix + randomHex(8)
	view, err := b.sn.View(ctx, key, parentTop)
	if err != nil {
		return err
	}
	defer b.sn.Remove(context.WithoutCancel(ctx), key)
	return mount.WithTempMount(ctx, view, masked)
}

// scriptDir writes a `RUN <<EOF` script that starts with #! where the
// container finds it: /dev/pipes/<name>, as BuildKit puts it.
func (s *stage) scriptDir(h *dockerfile.Heredoc) (string, error) {
	dir, err := os.MkdirTemp(s.j.work, "pipes-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, h.Name), []byte(h.Content), 0o755)
}
