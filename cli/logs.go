package cli

import (
	"io"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type logsOptions struct {
	follow, timestamps, details bool
	since, until, tail          string
}

func newLogsCommand(e *env) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			ins, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			// since and until may be RFC 3339 times, Unix timestamps or
			// durations ("10m"); the client turns them into timestamps.
			rc, err := c.ContainerLogs(cmd.Context(), ins.Container.ID, client.ContainerLogsOptions{
				ShowStdout: true, ShowStderr: true, Since: o.since, Until: o.until,
				Timestamps: o.timestamps, Follow: o.follow, Tail: o.tail, Details: o.details,
			})
			if err != nil {
				return err
			}
			defer rc.Close()
			if ins.Container.Config != nil && ins.Container.Config.Tty {
				_, err = io.Copy(e.stdout, rc)
				return err
			}
			return demux(e.stdout, e.stderr, rc)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.details, "details", false, "Show extra details provided to logs")
	f.BoolVarP(&o.follow, "follow", "f", false, "Follow log output")
	f.StringVar(&o.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVar(&o.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}
