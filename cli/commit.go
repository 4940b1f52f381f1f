package cli

import (
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// commitCommands adds `commit` and `container commit`.
func commitCommands(e *env) []*cobra.Command {
	return []*cobra.Command{
		managementCommand(e, "container", "Manage containers", newCommitCommand(e)),
		aliases(newCommitCommand(e), "berth container commit", "berth commit"),
	}
}

func newCommitCommand(e *env) *cobra.Command {
	var o client.ContainerCommitOptions
	pause := true
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Long: `Create a new image from a container's changes.

The container's writable layer becomes a new read-only layer on top of its
image. The container is paused while its changes are read unless
--pause=false is given.`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				o.Reference = args[1]
			}
			o.NoPause = !pause
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
