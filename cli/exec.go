package cli

import (
	"context"
	"errors"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type execOptions struct {
	detach, interactive, tty, privileged bool
	detachKeys, user, workdir            string
	env, envFile                         []string
}

func newExecCommand(e *env) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), e, args[0], args[1:], o)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	listFlag(f, &o.env, "env", "e", "Set environment variables", validateEnv)
	listFlag(f, &o.envFile, "env-file", "", "Read in a file of environment variables", nil)
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVarP(&o.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// runExec runs the command and exits with its status; detached, it only
// starts it.
func runExec(ctx context.Context, e *env, name string, cmdArgs []string, o execOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	if _, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
		return err
	}
	if _, isTerm := terminalFd(e.stdin); !o.detach && o.tty && o.interactive && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	opts, err := o.createOptions(e, cmdArgs)
	if err != nil {
		return err
	}
	size := opts.ConsoleSize
	created, err := c.ExecCreate(ctx, name, opts)
	if err != nil {
		return err
	}
	if o.detach {
		_, err := c.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: o.tty, ConsoleSize: size})
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	att, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: o.tty, ConsoleSize: size})
	if err != nil {
		return err
	}
	defer att.Close()
	s := &session{conn: att.HijackedResponse, stdout: e.stdout, stderr: e.stderr, tty: o.tty, detachKeys: o.detachKeys}
	if o.interactive {
		s.stdin = e.stdinReader()
	}
	if o.tty {
		e.monitorSize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := c.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := s.run(ctx, e); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	ins, err := c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	return exitStatus(ins.ExitCode)
}

// createOptions is the exec's request; a tty starts at the terminal's size.
func (o execOptions) createOptions(e *env, cmdArgs []string) (client.ExecCreateOptions, error) {
	env, err := (&createOptions{env: o.env, envFile: o.envFile}).environment()
	if err != nil {
		return client.ExecCreateOptions{}, err
	}
	opts := client.ExecCreateOptions{
		User: o.user, Privileged: o.privileged, TTY: o.tty, Env: env, WorkingDir: o.workdir, Cmd: cmdArgs,
		DetachKeys: o.detachKeys, AttachStdin: o.interactive && !o.detach, AttachStdout: !o.detach, AttachStderr: !o.detach,
	}
	if h, w, ok := e.terminalSize(); o.tty && ok {
		opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	return opts, nil
}
