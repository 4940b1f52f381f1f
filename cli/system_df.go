package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// dfRow is one line of `system df`.
type dfRow struct {
	Active      string
	Reclaimable string
	Size        string
	TotalCount  string
	Type        string
}

func dfHeaders() map[string]string {
	return map[string]string{"Active": "ACTIVE", "Reclaimable": "RECLAIMABLE", "Size": "SIZE", "TotalCount": "TOTAL", "Type": "TYPE"}
}

func newDiskUsageCommand(e *env) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			du, err := c.DiskUsage(cmd.Context(), client.DiskUsageOptions{
				Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: verbose,
			})
			if err != nil {
				return err
			}
			if verbose {
				return writeVerboseDiskUsage(e.stdout, format, du)
			}
			f := resolveFormat(format, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
			return writeList(e.stdout, f, dfHeaders(), dfRows(du))
		},
	}
	cmd.Flags().StringVar(&format, "format", "", formatHelp)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func dfRows(du client.DiskUsageResult) []dfRow {
	row := func(typ string, total, active, size, reclaimable int64) dfRow {
		r := dfRow{Type: typ, TotalCount: fmt.Sprint(total), Active: fmt.Sprint(active), Size: humanSize4(size), Reclaimable: humanSize4(reclaimable)}
		if size > 0 {
			r.Reclaimable = fmt.Sprintf("%s (%d%%)", humanSize4(reclaimable), reclaimable*100/size)
		}
		return r
	}
	return []dfRow{
		row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, imagesReclaimable(du.Images)),
		row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable),
		row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable),
		row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable),
	}
}

// imagesReclaimable is what docker's CLI shows: all layer bytes except the
// unique part of images that containers use. (The client library's own sum
// counts only unused images' unique bytes, so layers shared among unused
// images would look unreclaimable.)
func imagesReclaimable(iu client.ImagesDiskUsage) int64 {
	if len(iu.Items) == 0 {
		return iu.Reclaimable
	}
	var used int64
	for _, img := range iu.Items {
		if img.Containers > 0 && img.Size != -1 && img.SharedSize != -1 {
			used += img.Size - img.SharedSize
		}
	}
	return iu.TotalSize - used
}

// Row types of `system df -v`, one per section.
type (
	dfContainerRow struct {
		Command, CreatedSince, ID, Image, LocalVolumes, Names, Size, Status string
	}
	dfVolumeRow struct {
		Links, Name, Size string
	}
	dfCacheRow struct {
		CacheType, CreatedSince, ID, LastUsedSince, Shared, Size, UsageCount string
	}
	verboseDiskUsage struct {
		Images     []imageRow
		Containers []dfContainerRow
		Volumes    []dfVolumeRow
		BuildCache []dfCacheRow
	}
)

func verboseRows(now time.Time, du client.DiskUsageResult) verboseDiskUsage {
	v := verboseDiskUsage{Images: []imageRow{}, Containers: []dfContainerRow{}, Volumes: []dfVolumeRow{}, BuildCache: []dfCacheRow{}}
	for _, img := range du.Images.Items {
		// One row per image, named by its first tag.
		if rows := imageRows(now, img, false, true); len(rows) > 0 {
			v.Images = append(v.Images, rows[0])
		}
	}
	for _, c := range du.Containers.Items {
		names := make([]string, len(c.Names))
		for i, n := range c.Names {
			names[i] = strings.TrimPrefix(n, "/")
		}
		var vols int
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				vols++
			}
		}
		v.Containers = append(v.Containers, dfContainerRow{
			ID: shortID(c.ID), Image: c.Image, Command: `"` + ellipsis(c.Command, 20) + `"`,
			LocalVolumes: fmt.Sprint(vols), Size: humanSize4(c.SizeRw), CreatedSince: since(now, c.Created),
			Status: c.Status, Names: strings.Join(names, ","),
		})
	}
	for _, vol := range du.Volumes.Items {
		r := dfVolumeRow{Name: vol.Name, Links: "N/A", Size: "N/A"}
		if u := vol.UsageData; u != nil {
			r.Links, r.Size = fmt.Sprint(u.RefCount), humanSize4(u.Size)
		}
		v.Volumes = append(v.Volumes, r)
	}
	for _, b := range du.BuildCache.Items {
		last := ""
		if b.LastUsedAt != nil {
			last = since(now, b.LastUsedAt.Unix())
		}
		v.BuildCache = append(v.BuildCache, dfCacheRow{
			ID: shortID(b.ID), CacheType: b.Type, Size: humanSize4(b.Size), CreatedSince: since(now, b.CreatedAt.Unix()),
			LastUsedSince: last, UsageCount: fmt.Sprint(b.UsageCount), Shared: fmt.Sprint(b.Shared),
		})
	}
	return v
}

func writeVerboseDiskUsage(w io.Writer, format string, du client.DiskUsageResult) error {
	v := verboseRows(time.Now(), du)
	if format != "" {
		return renderTemplate(w, format, v)
	}
	sections := []struct {
		title  string
		table  string
		render func(string) error
	}{
		{"Images space usage:", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
			func(t string) error { return writeList(w, resolveFormat(t, ""), imageHeaders(), v.Images) }},
		{"Containers space usage:", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.CreatedSince}}\t{{.Status}}\t{{.Names}}",
			func(t string) error { return writeList(w, resolveFormat(t, ""), dfVerboseHeaders(), v.Containers) }},
		{"Local Volumes space usage:", "table {{.Name}}\t{{.Links}}\t{{.Size}}",
			func(t string) error { return writeList(w, resolveFormat(t, ""), dfVerboseHeaders(), v.Volumes) }},
		{fmt.Sprintf("Build cache usage: %s", humanSize4(du.BuildCache.TotalSize)), "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
			func(t string) error {
				h := dfVerboseHeaders()
				h["ID"] = "CACHE ID"
				return writeList(w, resolveFormat(t, ""), h, v.BuildCache)
			}},
	}
	for i, s := range sections {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n\n", s.title)
		if err := s.render(s.table); err != nil {
			return err
		}
	}
	return nil
}

func dfVerboseHeaders() map[string]string {
	return map[string]string{
		"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE",
		"CreatedSince": "CREATED", "Status": "STATUS", "Names": "NAMES", "Name": "VOLUME NAME", "Links": "LINKS",
		"CacheType": "CACHE TYPE", "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
	}
}
