package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// volumeCommands is the volume group: `berth volume ...`.
func volumeCommands(e *env) []*cobra.Command {
	return []*cobra.Command{managementCommand(e, "volume", "Manage volumes",
		newVolumeCreateCommand(e),
		newVolumeInspectCommand(e),
		aliases(newVolumeListCommand(e), "berth volume ls", "berth volume list"),
		newVolumePruneCommand(e),
		aliases(newVolumeRemoveCommand(e), "berth volume rm", "berth volume remove"),
	)}
}

// keyValueMap reads repeated key=value flags into a map; a bare key maps to
// "", as docker's -o and --label do.
func keyValueMap(vals []string) map[string]string {
	out := map[string]string{}
	for _, v := range vals {
		k, val, _ := strings.Cut(v, "=")
		out[k] = val
	}
	return out
}

func newVolumeCreateCommand(e *env) *cobra.Command {
	var driver, name string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: either specify --name or provide positional arg, not both")
				}
				name = args[0]
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: keyValueMap(opts), Labels: keyValueMap(labels),
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, res.Volume.Name)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringVar(&name, "name", "", "Specify volume name")
	f.Lookup("name").Hidden = true
	listFlag(f, &labels, "label", "", "Set metadata for a volume", nil)
	listFlag(f, &opts, "opt", "o", "Set driver specific options", nil)
	return cmd
}

// volumeRow is one line of `volume ls`; its fields are the --format keys
// and, in this order, the keys of --format json.
type volumeRow struct {
	Availability string
	Driver       string
	Group        string
	Labels       string
	Links        string
	Mountpoint   string
	Name         string
	Scope        string
	Size         string
	Status       string

	labels map[string]string
}

// Label returns one label's value, for --format '{{.Label "x"}}'.
func (r volumeRow) Label(name string) string { return r.labels[name] }

func volumeHeaders() map[string]string {
	return map[string]string{
		"Availability": "AVAILABILITY", "Driver": "DRIVER", "Group": "GROUP", "Labels": "LABELS", "Links": "LINKS",
		"Mountpoint": "MOUNTPOINT", "Name": "VOLUME NAME", "Scope": "SCOPE", "Size": "SIZE", "Status": "STATUS",
	}
}

func toVolumeRow(v volume.Volume) volumeRow {
	var labels []string
	for k, val := range v.Labels {
		labels = append(labels, k+"="+val)
	}
	slices.Sort(labels)
	r := volumeRow{
		Availability: "N/A", Driver: v.Driver, Group: "N/A", Labels: strings.Join(labels, ","), Links: "N/A",
		Mountpoint: v.Mountpoint, Name: v.Name, Scope: v.Scope, Size: "N/A", Status: "N/A", labels: v.Labels,
	}
	if u := v.UsageData; u != nil {
		r.Links = fmt.Sprint(u.RefCount)
		if u.Size >= 0 {
			r.Size = units.HumanSize(float64(u.Size))
		}
	}
	return r
}

func newVolumeListCommand(e *env) *cobra.Command {
	var quiet bool
	var format string
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filters.Filters()})
			if err != nil {
				return err
			}
			items := res.Items
			slices.SortStableFunc(items, func(a, b volume.Volume) int { return naturalCompare(a.Name, b.Name) })
			rows := make([]volumeRow, 0, len(items))
			for _, v := range items {
				rows = append(rows, toVolumeRow(v))
			}
			if quiet && format == "" {
				format = "{{.Name}}"
			}
			return writeList(e.stdout, resolveFormat(format, "table {{.Driver}}\t{{.Name}}"), volumeHeaders(), rows)
		},
	}
	f := cmd.Flags()
	f.VarP(&filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	f.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	return cmd
}

// naturalCompare orders names as docker's CLI does, digit runs by value:
// "v2" before "v10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func newVolumeInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
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
			for _, name := range args {
				res, err := c.VolumeInspect(cmd.Context(), name, client.VolumeInspectOptions{})
				if err != nil {
					errs = append(errs, e.message(err))
					continue
				}
				if err := ins.addTyped(bytes.TrimSpace(res.Raw), res.Volume); err != nil {
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
	return cmd
}

func newVolumeRemoveCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(cmd.Context(), e, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
				if force && cerrdefs.IsNotFound(err) {
					return errSkipped
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(e *env) *cobra.Command {
	var force, all bool
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			what := "anonymous local volumes"
			if all {
				what = "all local volumes"
			}
			if !force && !e.confirm("WARNING! This will remove "+what+" not used by at least one container.\nAre you sure you want to continue?") {
				return nil
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: filters.Filters()})
			if err != nil {
				return err
			}
			if len(res.Report.VolumesDeleted) > 0 {
				fmt.Fprintf(e.stdout, "Deleted Volumes:\n%s\n\n", strings.Join(res.Report.VolumesDeleted, "\n"))
			}
			_, err = fmt.Fprintf(e.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	f.Var(&filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// setVolumeField is --mount's volume-driver, volume-label and volume-opt
// (the last two "key=value", repeatable); v has a DriverConfig.
func setVolumeField(v *mount.VolumeOptions, key, val string) {
	set := func(m map[string]string) map[string]string {
		if m == nil {
			m = map[string]string{}
		}
		k, value, _ := strings.Cut(val, "=")
		m[k] = value
		return m
	}
	switch key {
	case "volume-driver":
		v.DriverConfig.Name = val
	case "volume-label":
		v.Labels = set(v.Labels)
	case "volume-opt":
		v.DriverConfig.Options = set(v.DriverConfig.Options)
	}
}

// absoluteMountSource makes a --mount source of "." or "./..." absolute,
// as the docker CLI does.
func absoluteMountSource(src string) string {
	if src != "." && !strings.HasPrefix(src, "./") {
		return src
	}
	if abs, err := filepath.Abs(src); err == nil {
		return abs
	}
	return src
}

// absoluteBindSource makes a -v source that starts with "." absolute, as
// the docker CLI does, so `-v ./src:/src` binds the directory instead of
// naming a volume "./src".
func absoluteBindSource(bind string) string {
	host, target, ok := strings.Cut(bind, ":")
	if !ok || !strings.HasPrefix(host, ".") {
		return bind
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return bind
	}
	return abs + ":" + target
}
