package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// historyRow is one line of `history`, keyed like docker's --format fields.
type historyRow struct {
	Comment      string
	CreatedAt    string
	CreatedBy    string
	CreatedSince string
	ID           string
	Size         string
}

func historyHeaders() map[string]string {
	return map[string]string{
		"Comment": "COMMENT", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
		"CreatedSince": "CREATED", "ID": "IMAGE", "Size": "SIZE",
	}
}

type historyOptions struct {
	human, noTrunc, quiet bool
	format                string
}

func newHistoryCommand(e *env) *cobra.Command {
	var o historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			def := "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			if !o.human {
				def = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			}
			f := resolveFormat(o.format, def)
			if o.quiet {
				f = listFormat{template: "{{.ID}}"}
			}
			rows := historyRows(time.Now(), res.Items, o.human, !o.noTrunc)
			return writeList(e.stdout, f, historyHeaders(), rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "", formatHelp)
	f.BoolVarP(&o.human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

func historyRows(now time.Time, items []imagetypes.HistoryResponseItem, human, trunc bool) []historyRow {
	rows := make([]historyRow, 0, len(items))
	for _, h := range items {
		r := historyRow{
			Comment:   h.Comment,
			CreatedAt: time.Unix(h.Created, 0).Format(time.RFC3339),
			CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "),
			ID:        h.ID,
			Size:      strconv.FormatInt(h.Size, 10),
		}
		r.CreatedSince = r.CreatedAt
		if human {
			r.CreatedSince = since(now, h.Created)
			if h.Created == 0 {
				// Steps without a timestamp; docker says so rather than
				// "56 years ago".
				r.CreatedSince = "N/A"
			}
			r.Size = humanSize(h.Size)
		}
		if trunc {
			r.ID = shortID(h.ID)
			r.CreatedBy = ellipsis(r.CreatedBy, 45)
		}
		rows = append(rows, r)
	}
	return rows
}

type importOptions struct {
	changes  []string
	message  string
	platform string
}

func newImportCommand(e *env) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return runImport(cmd, e, args[0], ref, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.message, "message", "m", "", "Set commit message for imported image")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// runImport streams a local file or stdin to the daemon ("-" as source) or
// lets the daemon fetch a URL, then prints the daemon's messages: on
// success, the new image id.
func runImport(cmd *cobra.Command, e *env, src, ref string, o importOptions) error {
	source := client.ImageImportSource{SourceName: "-"}
	switch {
	case src == "-":
		source.Source = e.stdin
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		source.SourceName = src
	default:
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		source.Source = f
	}
	platform, err := parsePlatform(o.platform)
	if err != nil {
		return err
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	rc, err := c.ImageImport(cmd.Context(), source, ref, client.ImageImportOptions{
		Message: o.message, Changes: o.changes, Platform: platform,
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	return displayStream(rc, e.stdout)
}

// parsePlatform reads "os[/arch[/variant]]"; empty means the daemon's own.
func parsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return ocispec.Platform{}, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slicesContainsEmpty(parts) {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

func slicesContainsEmpty(parts []string) bool {
	for _, p := range parts {
		if p == "" {
			return true
		}
	}
	return false
}
