package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// networkCommands is the network group: `berth network ...`.
func networkCommands(e *env) []*cobra.Command {
	return []*cobra.Command{managementCommand(e, "network", "Manage networks",
		newNetworkConnectCommand(e),
		newNetworkCreateCommand(e),
		newNetworkDisconnectCommand(e),
		newNetworkInspectCommand(e),
		aliases(newNetworkListCommand(e), "berth network ls", "berth network list"),
		newNetworkPruneCommand(e),
		aliases(newNetworkRemoveCommand(e), "berth network rm", "berth network remove"),
	)}
}

// networkRow is one line of `network ls`; its fields are the --format keys
// and, in this order, the keys of --format json.
type networkRow struct {
	CreatedAt string
	Driver    string
	ID        string
	IPv4      string
	IPv6      string
	Internal  string
	Labels    string
	Name      string
	Scope     string

	labels map[string]string
}

// Label returns one label's value, for --format '{{.Label "x"}}'.
func (r networkRow) Label(name string) string { return r.labels[name] }

func networkHeaders() map[string]string {
	return map[string]string{
		"CreatedAt": "CREATED AT", "Driver": "DRIVER", "ID": "NETWORK ID", "IPv4": "IPV4", "IPv6": "IPV6",
		"Internal": "INTERNAL", "Labels": "LABELS", "Name": "NAME", "Scope": "SCOPE",
	}
}

func newNetworkListCommand(e *env) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filters.Filters()})
			if err != nil {
				return err
			}
			items := res.Items
			slices.SortStableFunc(items, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
			rows := make([]networkRow, 0, len(items))
			for _, n := range items {
				rows = append(rows, toNetworkRow(n, noTrunc))
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			return writeList(e.stdout, resolveFormat(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"), networkHeaders(), rows)
		},
	}
	f := cmd.Flags()
	f.VarP(&filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	f.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

func toNetworkRow(n network.Summary, noTrunc bool) networkRow {
	id := n.ID
	if !noTrunc {
		id = shortID(id)
	}
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	return networkRow{
		CreatedAt: n.Created.String(), Driver: n.Driver, ID: id,
		IPv4: strconv.FormatBool(n.EnableIPv4), IPv6: strconv.FormatBool(n.EnableIPv6), Internal: strconv.FormatBool(n.Internal),
		Labels: strings.Join(labels, ","), Name: n.Name, Scope: n.Scope, labels: n.Labels,
	}
}

func newNetworkInspectCommand(e *env) *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			ins, err := newInspector(format)
			if err != nil {
				return err
			}
			var errs []string
			for _, ref := range args {
				res, err := c.NetworkInspect(cmd.Context(), ref, client.NetworkInspectOptions{Verbose: verbose})
				if err != nil {
					errs = append(errs, e.message(err))
					continue
				}
				if err := ins.add(bytes.TrimSpace(res.Raw)); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if err := ins.flush(e.stdout); err != nil {
				return err
			}
			if len(errs) > 0 {
				return fmt.Errorf("%s", strings.Join(errs, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func newNetworkRemoveCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, ref string) error {
				_, err := c.NetworkRemove(ctx, ref, client.NetworkRemoveOptions{})
				if force && cerrdefs.IsNotFound(err) {
					return errSkipped
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCommand(e *env) *cobra.Command {
	var force bool
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !e.confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?") {
				return nil
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: filters.Filters()})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintf(e.stdout, "Deleted Networks:\n%s\n\n", strings.Join(res.Report.NetworksDeleted, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
