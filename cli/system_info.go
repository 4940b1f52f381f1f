package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// infoDoc is what `info --format` sees: the daemon's document plus the
// client's, as in docker.
type infoDoc struct {
	*system.Info
	ClientInfo   clientInfo
	ServerErrors []string `json:",omitempty"`
}

type clientInfo struct {
	Version string
	Context string
	Debug   bool
}

func newInfoCommand(e *env, use string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ci := clientInfo{Version: version().Version, Context: "default", Debug: e.debug}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, serr := c.Info(cmd.Context(), client.InfoOptions{})
			if format != "" {
				if serr != nil {
					return serr
				}
				return renderTemplate(e.stdout, format, infoDoc{Info: &res.Info, ClientInfo: ci})
			}
			fmt.Fprintf(e.stdout, "Client:\n Version:    %s\n Context:    %s\n Debug Mode: %t\n\nServer:\n", ci.Version, ci.Context, ci.Debug)
			if serr != nil {
				return serr
			}
			printServerInfo(e.stdout, &res.Info)
			for _, w := range res.Info.Warnings {
				fmt.Fprintln(e.stderr, w)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// renderTemplate runs a one-document --format ("json" or a template).
func renderTemplate(w io.Writer, format string, doc any) error {
	if format == "json" {
		format = "{{json .}}"
	}
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	if err := t.Execute(w, doc); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	_, err = fmt.Fprintln(w)
	return err
}

// printServerInfo follows the docker CLI's layout: fixed lines always, the
// optional ones only when the daemon reports them.
func printServerInfo(w io.Writer, i *system.Info) {
	p := func(label string, v any) { fmt.Fprintln(w, label, v) }
	opt := func(label, v string) {
		if v != "" {
			p(label, v)
		}
	}
	p(" Containers:", i.Containers)
	p("  Running:", i.ContainersRunning)
	p("  Paused:", i.ContainersPaused)
	p("  Stopped:", i.ContainersStopped)
	p(" Images:", i.Images)
	opt(" Server Version:", i.ServerVersion)
	opt(" Storage Driver:", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	p(" Logging Driver:", i.LoggingDriver)
	p(" Cgroup Driver:", i.CgroupDriver)
	opt(" Cgroup Version:", i.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	p("  Volume:", strings.Join(i.Plugins.Volume, " "))
	p("  Network:", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) > 0 {
		p("  Authorization:", strings.Join(i.Plugins.Authorization, " "))
	}
	p("  Log:", strings.Join(i.Plugins.Log, " "))
	p(" Swarm:", i.Swarm.LocalNodeState)
	printSwarm(w, i)
	if len(i.Runtimes) > 0 {
		p(" Runtimes:", strings.Join(slices.Sorted(maps.Keys(i.Runtimes)), " "))
		p(" Default Runtime:", i.DefaultRuntime)
	}
	if i.OSType == "linux" {
		printLinuxInfo(w, i)
	}
	printHostInfo(w, i)
}

func printSwarm(w io.Writer, i *system.Info) {
	switch i.Swarm.LocalNodeState {
	case "inactive", "locked":
		return
	}
	fmt.Fprintln(w, "  NodeID:", i.Swarm.NodeID)
	if i.Swarm.Error != "" {
		fmt.Fprintln(w, "  Error:", i.Swarm.Error)
	}
	fmt.Fprintln(w, "  Is Manager:", i.Swarm.ControlAvailable)
	fmt.Fprintln(w, "  Node Address:", i.Swarm.NodeAddr)
}

func printLinuxInfo(w io.Writer, i *system.Info) {
	fmt.Fprintln(w, " Init Binary:", i.InitBinary)
	for _, c := range []struct {
		name string
		id   string
	}{{"containerd", i.ContainerdCommit.ID}, {"runc", i.RuncCommit.ID}, {"init", i.InitCommit.ID}} {
		fmt.Fprintf(w, " %s version: %s\n", c.name, c.id)
	}
	if len(i.SecurityOptions) == 0 {
		return
	}
	fmt.Fprintln(w, " Security Options:")
	for _, so := range i.SecurityOptions {
		// "name=seccomp,profile=builtin": the name, then its profile.
		for _, kv := range strings.Split(so, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "name":
				fmt.Fprintln(w, "  "+v)
			case "profile":
				fmt.Fprintln(w, "   Profile:", v)
			}
		}
	}
}

func printHostInfo(w io.Writer, i *system.Info) {
	p := func(label string, v any) { fmt.Fprintln(w, label, v) }
	opt := func(label, v string) {
		if v != "" {
			p(label, v)
		}
	}
	p(" Kernel Version:", i.KernelVersion)
	p(" Operating System:", i.OperatingSystem)
	p(" OSType:", i.OSType)
	p(" Architecture:", i.Architecture)
	p(" CPUs:", i.NCPU)
	p(" Total Memory:", units.BytesSize(float64(i.MemTotal)))
	opt(" Name:", i.Name)
	opt(" ID:", i.ID)
	p(" Docker Root Dir:", i.DockerRootDir)
	p(" Debug Mode:", i.Debug)
	if i.Debug {
		p("  File Descriptors:", i.NFd)
		p("  Goroutines:", i.NGoroutines)
		p("  System Time:", i.SystemTime)
		p("  EventsListeners:", i.NEventsListener)
	}
	opt(" HTTP Proxy:", i.HTTPProxy)
	opt(" HTTPS Proxy:", i.HTTPSProxy)
	opt(" No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintln(w, "  "+l)
		}
	}
	p(" Experimental:", i.ExperimentalBuild)
	printRegistries(w, i)
	p(" Live Restore Enabled:", i.LiveRestoreEnabled)
	opt(" Product License:", i.ProductLicense)
	if len(i.DefaultAddressPools) > 0 {
		fmt.Fprintln(w, " Default Address Pools:")
		for _, pool := range i.DefaultAddressPools {
			fmt.Fprintf(w, "   Base: %s, Size: %d\n", pool.Base, pool.Size)
		}
	}
	fmt.Fprintln(w)
}

func printRegistries(w io.Writer, i *system.Info) {
	if rc := i.RegistryConfig; rc != nil && (len(rc.InsecureRegistryCIDRs) > 0 || len(rc.IndexConfigs) > 0) {
		fmt.Fprintln(w, " Insecure Registries:")
		for _, name := range slices.Sorted(maps.Keys(rc.IndexConfigs)) {
			if !rc.IndexConfigs[name].Secure {
				fmt.Fprintln(w, "  "+name)
			}
		}
		for _, cidr := range rc.InsecureRegistryCIDRs {
			fmt.Fprintln(w, "  "+cidr.String())
		}
	}
	if rc := i.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		fmt.Fprintln(w, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			fmt.Fprintln(w, "  "+m)
		}
	}
}
