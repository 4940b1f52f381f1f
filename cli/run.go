package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type runOptions struct {
	createOptions
	detach, sigProxy bool
	detachKeys       string
}

func newRunCommand(e *env) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, e, &o, args)
		},
	}
	f := cmd.Flags()
	// Flags after IMAGE belong to the container's command.
	f.SetInterspersed(false)
	addCreateFlags(f, &o.createOptions)
	f.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func newCreateCommand(e *env) *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPullPolicy(o.pull); err != nil {
				return runFailure(cmd, e, err, 125)
			}
			spec, err := o.build(cmd.Flags(), args)
			if err != nil {
				return runFailure(cmd, e, err, 125)
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			id, err := e.createContainer(cmd.Context(), c, spec, &o)
			if err != nil {
				return runFailure(cmd, e, err, 125)
			}
			_, err = fmt.Fprintln(e.stdout, id)
			return err
		},
	}
	cmd.Flags().SetInterspersed(false)
	addCreateFlags(cmd.Flags(), &o)
	return cmd
}

func checkPullPolicy(p string) error {
	switch p {
	case "always", "missing", "never":
		return nil
	}
	return fmt.Errorf(`invalid pull option: '%s': must be one of "always", "missing" or "never"`, p)
}

// runFailure formats a failed create or start as docker run does: the
// error after the program name, a hint, and exit code 125 unless the
// runtime said the command could not be found (127) or run (126).
func runFailure(cmd *cobra.Command, e *env, err error, code int) error {
	return statusError{
		code: code,
		msg:  fmt.Sprintf("berth: %s\n\nRun '%s --help' for more information", e.message(err), cmd.CommandPath()),
	}
}

// startFailureCode reads the OCI runtime's message the way docker does.
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 125
}

func runRun(cmd *cobra.Command, e *env, o *runOptions, args []string) error {
	if err := checkPullPolicy(o.pull); err != nil {
		return runFailure(cmd, e, err, 125)
	}
	spec, err := o.build(cmd.Flags(), args)
	if err != nil {
		return runFailure(cmd, e, err, 125)
	}
	cfg := spec.config
	if o.detach {
		if len(o.attach) > 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	}
	if _, isTerm := terminalFd(e.stdin); cfg.Tty && cfg.AttachStdin && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	if h, w, ok := e.terminalSize(); cfg.Tty && ok {
		// The process starts at the right size instead of being resized.
		spec.host.ConsoleSize = [2]uint{h, w}
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	id, err := e.createContainer(ctx, c, spec, &o.createOptions)
	if err != nil {
		return runFailure(cmd, e, err, 125)
	}
	if o.detach {
		if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return runFailure(cmd, e, err, startFailureCode(err))
		}
		_, err := fmt.Fprintln(e.stdout, id)
		return err
	}
	return e.runAttached(ctx, cmd, c, id, spec, o)
}

// runAttached is the foreground half of run: wait and attach before the
// start so nothing is missed, then relay until the container ends and
// exit with its status.
func (e *env) runAttached(ctx context.Context, cmd *cobra.Command, c *client.Client, id string, spec *containerSpec, o *runOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := spec.config
	status := e.waitExit(ctx, id, spec.host.AutoRemove)
	var streamDone chan error
	if cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr {
		att, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream: true, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: o.detachKeys,
		})
		if err != nil {
			return runFailure(cmd, e, err, 125)
		}
		defer att.Close()
		s := &session{conn: att.HijackedResponse, tty: cfg.Tty, detachKeys: o.detachKeys}
		if cfg.AttachStdin {
			s.stdin = e.stdinReader()
		}
		if cfg.AttachStdout {
			s.stdout = e.stdout
		}
		if cfg.AttachStderr {
			s.stderr = e.stderr
		}
		streamDone = make(chan error, 1)
		go func() { streamDone <- s.run(ctx, e) }()
	}
	if o.sigProxy && !cfg.Tty {
		e.proxySignals(ctx, func(ctx context.Context, sig string) error {
			_, err := c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: sig})
			return err
		})
	}
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		cancel()
		if streamDone != nil {
			<-streamDone // the terminal is restored before the error shows
		}
		if spec.host.AutoRemove {
			<-status
		}
		return runFailure(cmd, e, err, startFailureCode(err))
	}
	if cfg.Tty {
		e.monitorSize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if streamDone != nil {
		if err := <-streamDone; err != nil {
			if errors.Is(err, errDetached) {
				return nil
			}
			return err
		}
	}
	return exitStatus(<-status)
}

// waitExit delivers the container's status at its next exit (or, for an
// auto-removed one, at its removal). The wait is in place when it returns.
func (e *env) waitExit(ctx context.Context, id string, removed bool) <-chan int {
	out := make(chan int, 1)
	c, err := e.api()
	if err != nil {
		out <- 125
		return out
	}
	cond := container.WaitConditionNextExit
	if removed {
		cond = container.WaitConditionRemoved
	}
	res := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintf(e.stderr, "Error waiting for container: %s\n", r.Error.Message)
				out <- 125
				return
			}
			out <- int(r.StatusCode)
		case err := <-res.Error:
			if ctx.Err() == nil {
				fmt.Fprintf(e.stderr, "Error waiting for container: %v\n", err)
			}
			out <- 125
		}
	}()
	return out
}

func exitStatus(code int) error {
	if code == 0 {
		return nil
	}
	return statusError{code: code}
}

// createContainer creates, pulling the image first as --pull says: always,
// when missing (after saying so, as docker does), or never.
func (e *env) createContainer(ctx context.Context, c *client.Client, spec *containerSpec, o *createOptions) (string, error) {
	var cidFile *os.File
	if o.cidfile != "" {
		f, err := os.OpenFile(o.cidfile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidfile)
		}
		if err != nil {
			return "", fmt.Errorf("failed to create the container ID file: %w", err)
		}
		cidFile = f
		defer f.Close()
	}
	id, err := e.createWithPull(ctx, c, spec, o)
	if cidFile != nil {
		if err == nil {
			_, err = cidFile.WriteString(id)
		}
		if err != nil {
			_ = os.Remove(o.cidfile)
		}
	}
	return id, err
}

func (e *env) createWithPull(ctx context.Context, c *client.Client, spec *containerSpec, o *createOptions) (string, error) {
	if o.pull == "always" {
		if err := e.pullForRun(ctx, c, spec.config.Image, spec.platform, o.quiet); err != nil {
			return "", err
		}
	}
	res, err := c.ContainerCreate(ctx, spec.createOptions(o.name))
	if err != nil && o.pull == "missing" && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(e.stderr, "Unable to find image '%s' locally\n", familiarTagged(spec.config.Image))
		if err := e.pullForRun(ctx, c, spec.config.Image, spec.platform, o.quiet); err != nil {
			return "", err
		}
		res, err = c.ContainerCreate(ctx, spec.createOptions(o.name))
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "WARNING: %s\n", w)
	}
	return res.ID, nil
}

func familiarTagged(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// pullForRun pulls with progress on stderr, where run and create show it.
func (e *env) pullForRun(ctx context.Context, c *client.Client, image string, platform *ocispec.Platform, quiet bool) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return err
	}
	named = reference.TagNameOnly(named)
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	if opts.RegistryAuth, err = registryAuth(ctx, named); err != nil {
		return err
	}
	resp, err := c.ImagePull(ctx, named.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	var out io.Writer = e.stderr
	if quiet {
		out = io.Discard
	}
	return newProgressDisplay(out).run(resp)
}
