package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newTopCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newDiffCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				fmt.Fprintf(e.stdout, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

func newExportCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, isTerm := terminalFd(e.stdout); output == "" && isTerm {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			rc, err := c.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			if output == "" {
				_, err = io.Copy(e.stdout, rc)
				return err
			}
			return writeFileAtomic(output, rc)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// writeFileAtomic writes r to a temporary file beside name and renames it
// into place, so a failed export never leaves half a tar under the name.
func writeFileAtomic(name string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".berth-export-*")
	if err != nil {
		return fmt.Errorf("failed to export container: %w", err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("failed to export container: %w", err)
	}
	return nil
}

func newPortCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			ins, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if ns := ins.Container.NetworkSettings; ns != nil {
				ports = ns.Ports
			}
			if len(args) == 2 {
				return printPort(e, args[0], args[1], ports)
			}
			var lines []string
			for p, bindings := range ports {
				for _, b := range bindings {
					lines = append(lines, fmt.Sprintf("%s -> %s", p, hostPortString(b)))
				}
			}
			slices.Sort(lines)
			for _, l := range lines {
				fmt.Fprintln(e.stdout, l)
			}
			return nil
		},
	}
}

func printPort(e *env, name, spec string, ports network.PortMap) error {
	full := spec
	if !strings.Contains(full, "/") {
		full += "/tcp"
	}
	p, err := network.ParsePort(full)
	if err != nil {
		return fmt.Errorf("Error: invalid port (%s): %w", spec, err)
	}
	bindings := ports[p]
	if len(bindings) == 0 {
		return fmt.Errorf("Error: No public port '%s' published for %s", spec, name)
	}
	for _, b := range bindings {
		fmt.Fprintln(e.stdout, hostPortString(b))
	}
	return nil
}

func hostPortString(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return net.JoinHostPort(ip, b.HostPort)
}

// inspectRaw fetches the JSON document of ref as kind ("container",
// "image", or "" for the first that exists, containers first as docker
// tries them), and for containers the decoded document too.
func inspectRaw(ctx context.Context, e *env, c *client.Client, ref, kind string) ([]byte, any, error) {
	if kind == "" || kind == "container" {
		res, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
		if err == nil {
			return bytes.TrimSpace(res.Raw), res.Container, nil
		}
		if kind != "" || !cerrdefs.IsNotFound(err) {
			return nil, nil, errors.New(e.message(err))
		}
	}
	var buf bytes.Buffer
	if _, err := c.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&buf)); err != nil {
		if kind == "" && cerrdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
		}
		return nil, nil, errors.New(e.message(err))
	}
	return bytes.TrimSpace(buf.Bytes()), nil, nil
}

// addTyped runs a template on the decoded document first, as docker does,
// so maps and structs print in Go's notation of the wire types
// ("map[80/tcp:[{127.0.0.1 8080}]]"); a template that needs a field only
// the raw JSON has (API 1.51's NetworkSettings.IPAddress) runs on that.
func (ins *inspector) addTyped(raw []byte, typed any) error {
	if ins.tmpl == nil || typed == nil {
		return ins.add(raw)
	}
	var buf bytes.Buffer
	if err := ins.tmpl.Execute(&buf, typed); err != nil {
		return ins.add(raw)
	}
	ins.out.Write(buf.Bytes())
	ins.out.WriteByte('\n')
	return nil
}

func newContainerInspectCommand(e *env) *cobra.Command {
	var format string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
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
				res, err := c.ContainerInspect(cmd.Context(), ref, client.ContainerInspectOptions{Size: size})
				if err != nil {
					errs = append(errs, e.message(err))
					continue
				}
				if err := ins.addTyped(bytes.TrimSpace(res.Raw), res.Container); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if err := ins.flush(e.stdout); err != nil {
				return err
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}
