package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type startOptions struct {
	attach, interactive bool
	detachKeys          string
}

func newStartCommand(e *env) *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.attach || o.interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return startAttached(cmd.Context(), e, args[0], o)
			}
			return startAll(cmd.Context(), e, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

// startAll starts each container, then sums up the failures in one line
// after their messages, as docker does.
func startAll(ctx context.Context, e *env, names []string) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	var failed []string
	for _, name := range names {
		if _, err := c.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			fmt.Fprintln(e.stderr, e.message(err))
			failed = append(failed, name)
			continue
		}
		fmt.Fprintln(e.stdout, name)
	}
	if len(failed) > 0 {
		return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
	}
	return nil
}

// startAttached attaches before starting, like run, and exits with the
// container's status.
func startAttached(ctx context.Context, e *env, name string, o startOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	ins, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := ins.Container
	stdin := o.interactive && ctr.Config.OpenStdin
	if _, isTerm := terminalFd(e.stdin); ctr.Config.Tty && stdin && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	att, err := c.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: o.detachKeys})
	if err != nil {
		return err
	}
	defer att.Close()
	s := &session{conn: att.HijackedResponse, stdout: e.stdout, stderr: e.stderr, tty: ctr.Config.Tty, detachKeys: o.detachKeys}
	if stdin {
		s.stdin = e.stdinReader()
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- s.run(ctx, e) }()
	if !ctr.Config.Tty {
		e.proxySignals(ctx, func(ctx context.Context, sig string) error {
			_, err := c.ContainerKill(ctx, ctr.ID, client.ContainerKillOptions{Signal: sig})
			return err
		})
	}
	status := e.waitExit(ctx, ctr.ID, ctr.HostConfig != nil && ctr.HostConfig.AutoRemove)
	if _, err := c.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-streamDone
		return err
	}
	if ctr.Config.Tty {
		e.monitorSize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := c.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-streamDone; err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	return exitStatus(<-status)
}
