package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// errSkipped from forEach's op leaves a name out without an error (rm -f
// of something that does not exist).
var errSkipped = errors.New("skipped")

// forEach runs op on every object named, printing each name that
// succeeded and each error in order, as docker's multi-object commands
// do; any failure makes the command exit 1.
func forEach(ctx context.Context, e *env, names []string, op func(ctx context.Context, c *client.Client, name string) error) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		if err := op(ctx, c, name); errors.Is(err, errSkipped) {
			continue
		} else if err != nil {
			errs = append(errs, e.message(err))
			continue
		}
		fmt.Fprintln(e.stdout, name)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func newStopCommand(e *env, restart bool) *cobra.Command {
	var signal string
	var timeout int
	use, short := "stop", "Stop one or more running containers"
	if restart {
		use, short = "restart", "Restart one or more containers"
	}
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, name string) error {
				if restart {
					_, err := c.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: signal, Timeout: t})
					return err
				}
				_, err := c.ContainerStop(ctx, name, client.ContainerStopOptions{Signal: signal, Timeout: t})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	return cmd
}

func newKillCommand(e *env) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newPauseCommand(e *env, pause bool) *cobra.Command {
	use, short := "pause", "Pause all processes within one or more containers"
	if !pause {
		use, short = "unpause", "Unpause all processes within one or more containers"
	}
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, name string) error {
				if pause {
					_, err := c.ContainerPause(ctx, name, client.ContainerPauseOptions{})
					return err
				}
				_, err := c.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func newRemoveContainerCommand(e *env) *cobra.Command {
	var force, volumes, link bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("Container name cannot be empty")
				}
				_, err := c.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: link})
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	f.BoolVarP(&link, "link", "l", false, "Remove the specified link")
	f.BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			var errs []string
			for _, name := range args {
				res := c.ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintln(e.stdout, r.StatusCode)
				case err := <-res.Error:
					errs = append(errs, e.message(err))
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
}

func newRenameCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			if _, err := c.ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				return fmt.Errorf("%s\nError: failed to rename container named %s", e.message(err), oldName)
			}
			return nil
		},
	}
}

func newContainerPruneCommand(e *env) *cobra.Command {
	var force bool
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !e.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?") {
				return nil
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: filters.Filters()})
			if err != nil {
				return err
			}
			if len(res.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(e.stdout, "Deleted Containers:")
				for _, id := range res.Report.ContainersDeleted {
					fmt.Fprintln(e.stdout, id)
				}
				fmt.Fprintln(e.stdout)
			}
			_, err = fmt.Fprintf(e.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return err
		},
	}
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// confirm asks on stdout and reads the answer from stdin; anything but
// "y" or "yes" (including no input at all) is a no, and a declined prompt
// is not an error, as in docker.
func (e *env) confirm(question string) bool {
	fmt.Fprint(e.stdout, question+" [y/N] ")
	line, _ := bufio.NewReader(e.stdinReader()).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}
