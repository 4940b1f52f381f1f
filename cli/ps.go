package cli

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// psRow is one line of `ps`; the field names are the --format keys and,
// in this order, the keys of --format json.
type psRow struct {
	Command      string
	CreatedAt    string
	ID           string
	Image        string
	Labels       string
	LocalVolumes string
	Mounts       string
	Names        string
	Networks     string
	Platform     *string
	Ports        string
	RunningFor   string
	Size         string
	State        string
	Status       string
}

func psHeaders() map[string]string {
	return map[string]string{
		"Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID", "Image": "IMAGE", "Labels": "LABELS",
		"LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Names": "NAMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
		"Ports": "PORTS", "RunningFor": "CREATED", "Size": "SIZE", "State": "STATE", "Status": "STATUS",
	}
}

type psOptions struct {
	all, quiet, latest, size, noTrunc bool
	last                              int
	filters                           filterOpt
	format                            string
}

func newPsCommand(e *env, use string) *cobra.Command {
	o := psOptions{filters: filterOpt{}}
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPs(cmd, e, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.VarP(&o.filters, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	return cmd
}

func runPs(cmd *cobra.Command, e *env, o psOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	def := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	if o.size {
		def += "\t{{.Size}}"
	}
	f := resolveFormat(o.format, def)
	if o.quiet {
		f = listFormat{template: "{{.ID}}"}
	}
	opts := client.ContainerListOptions{All: o.all, Limit: o.last, Filters: o.filters.Filters(),
		Size: o.size || (!o.quiet && strings.Contains(f.template, ".Size"))}
	if o.latest {
		opts.Limit = 1
	}
	res, err := c.ContainerList(cmd.Context(), opts)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]psRow, 0, len(res.Items))
	for _, s := range res.Items {
		rows = append(rows, toPsRow(now, s, !o.noTrunc))
	}
	return writeList(e.stdout, f, psHeaders(), rows)
}

func toPsRow(now time.Time, s container.Summary, trunc bool) psRow {
	r := psRow{
		ID: s.ID, Image: psImage(s, trunc), Command: s.Command, CreatedAt: time.Unix(s.Created, 0).String(),
		RunningFor: since(now, s.Created), Status: s.Status, State: string(s.State), Ports: displayPorts(s.Ports),
		Names: psNames(s.Names, trunc), Labels: joinLabels(s.Labels), Size: psSize(s),
	}
	if trunc {
		r.ID = shortID(s.ID)
		r.Command = ellipsis(r.Command, 20)
	}
	r.Command = strconv.Quote(r.Command)
	var mounts []string
	volumes := 0
	for _, m := range s.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if trunc {
			name = ellipsis(name, 15)
		}
		mounts = append(mounts, name)
		if m.Type == "volume" {
			volumes++
		}
	}
	r.Mounts, r.LocalVolumes = strings.Join(mounts, ","), strconv.Itoa(volumes)
	if s.NetworkSettings != nil {
		var nets []string
		for name := range s.NetworkSettings.Networks {
			nets = append(nets, name)
		}
		slices.Sort(nets)
		r.Networks = strings.Join(nets, ",")
	}
	return r
}

// psImage shows the image as created, without a digest when truncating,
// and as a short id when the container was created from an id.
func psImage(s container.Summary, trunc bool) string {
	if s.Image == "" {
		return "<no image>"
	}
	if !trunc {
		return s.Image
	}
	if shortID(s.ImageID) == shortID(s.Image) {
		return shortID(s.Image)
	}
	ref, err := reference.ParseNormalizedNamed(s.Image)
	if err != nil {
		return s.Image
	}
	if tagged, ok := ref.(reference.NamedTagged); ok {
		if r, err := reference.WithTag(reference.TrimNamed(ref), tagged.Tag()); err == nil {
			return reference.FamiliarString(r)
		}
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

// psNames drops the leading "/"; truncated, it keeps only the container's
// own name and not the names legacy links gave it ("other/alias").
func psNames(names []string, trunc bool) string {
	var out []string
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		if trunc && strings.Contains(n, "/") {
			continue
		}
		out = append(out, n)
		if trunc {
			break
		}
	}
	return strings.Join(out, ",")
}

func joinLabels(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

func psSize(s container.Summary) string {
	rw := humanSize(s.SizeRw)
	if s.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", rw, humanSize(s.SizeRootFs))
	}
	return rw
}

// displayPorts renders the PORTS column: ports published on the same
// number and address, or not published, collapse into ranges
// ("0.0.0.0:8000-8002->8000-8002/tcp", "80-81/tcp"); other mappings follow
// one by one ("127.0.0.1:8080->80/tcp").
func displayPorts(ports []container.PortSummary) string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b container.PortSummary) int {
		if a.PrivatePort != b.PrivatePort {
			return int(a.PrivatePort) - int(b.PrivatePort)
		}
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		if a.PublicPort != b.PublicPort {
			return int(a.PublicPort) - int(b.PublicPort)
		}
		return strings.Compare(a.Type, b.Type)
	})
	type span struct {
		ip, proto   string
		first, last uint16
	}
	format := func(s *span) string {
		r := strconv.Itoa(int(s.first))
		if s.last != s.first {
			r += "-" + strconv.Itoa(int(s.last))
		}
		if s.ip != "" {
			r = s.ip + ":" + r + "->" + r
		}
		return r + "/" + s.proto
	}
	// A span that breaks is written at once; the open ones follow in the
	// order their address and protocol first appeared.
	var out, keys, mappings []string
	open := map[string]*span{}
	for _, p := range ports {
		ip := ""
		if p.IP.IsValid() {
			ip = p.IP.String()
			if p.PublicPort != p.PrivatePort {
				hp := net.JoinHostPort(ip, strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", hp, p.PrivatePort, p.Type))
				continue
			}
		}
		key := ip + "/" + p.Type
		s := open[key]
		switch {
		case s == nil:
			keys = append(keys, key)
		case p.PrivatePort == s.last+1:
			s.last = p.PrivatePort
			continue
		default:
			out = append(out, format(s))
		}
		open[key] = &span{ip: ip, proto: p.Type, first: p.PrivatePort, last: p.PrivatePort}
	}
	for _, k := range keys {
		out = append(out, format(open[k]))
	}
	return strings.Join(append(out, mappings...), ", ")
}
