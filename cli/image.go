package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// imageCommands is the image group: `berth image ...` and the top-level
// shortcuts docker has for it.
func imageCommands(e *env) []*cobra.Command {
	mgmt := managementCommand(e, "image", "Manage images",
		aliases(newImagesCommand(e, "ls"), "berth image ls", "berth image list", "berth images"),
		aliases(newHistoryCommand(e), "berth image history", "berth history"),
		aliases(newImportCommand(e), "berth image import", "berth import"),
		newImageInspectCommand(e, "inspect", false),
		newPruneCommand(e),
		aliases(newRemoveCommand(e, "rm"), "berth image rm", "berth image remove", "berth rmi"),
		aliases(newTagCommand(e), "berth image tag", "berth tag"),
	)
	images := aliases(newImagesCommand(e, "images"), "berth image ls", "berth image list", "berth images")
	images.Annotations[annotCategory] = "common"
	return []*cobra.Command{
		mgmt,
		images,
		aliases(newHistoryCommand(e), "berth image history", "berth history"),
		aliases(newImportCommand(e), "berth image import", "berth import"),
		newImageInspectCommand(e, "inspect", true),
		aliases(newRemoveCommand(e, "rmi"), "berth image rm", "berth image remove", "berth rmi"),
		aliases(newTagCommand(e), "berth image tag", "berth tag"),
	}
}

// imageRow is one line of `images`; field names are the --format keys and,
// in this order, the keys of --format json.
type imageRow struct {
	Containers   string
	CreatedAt    string
	CreatedSince string
	Digest       string
	ID           string
	Repository   string
	SharedSize   string
	Size         string
	Tag          string
	UniqueSize   string
	VirtualSize  string
}

func imageHeaders() map[string]string {
	return map[string]string{
		"Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Digest": "DIGEST",
		"ID": "IMAGE ID", "Repository": "REPOSITORY", "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG",
		"UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
	}
}

type imagesOptions struct {
	all, quiet, digests, noTrunc bool
	filters                      filterOpt
	format                       string
}

func newImagesCommand(e *env, use string) *cobra.Command {
	var o imagesOptions
	o.filters = filterOpt{}
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.filters.add("reference", args[0])
			}
			return runImages(cmd, e, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.VarP(&o.filters, "filter", "f", "Filter output based on conditions provided (dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=, since=)")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template`

func runImages(cmd *cobra.Command, e *env, o imagesOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	res, err := c.ImageList(cmd.Context(), client.ImageListOptions{All: o.all, Filters: o.filters.Filters()})
	if err != nil {
		return err
	}
	def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if o.digests {
		def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	f := resolveFormat(o.format, def)
	if o.quiet {
		f = listFormat{template: "{{.ID}}"}
	}
	var rows []imageRow
	now := time.Now()
	for _, img := range res.Items {
		rows = append(rows, imageRows(now, img, o.digests, !o.noTrunc)...)
	}
	return writeList(e.stdout, f, imageHeaders(), rows)
}

func isDangling(img imagetypes.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// imageRows expands an image into one row per repository and tag, in the
// order the daemon listed the tags. With digests, a tag row repeats for
// each digest of its repository; digests of untagged repositories get rows
// of their own.
func imageRows(now time.Time, img imagetypes.Summary, digests, trunc bool) []imageRow {
	base := imageRow{
		Containers:   naCount(img.Containers),
		CreatedAt:    time.Unix(img.Created, 0).String(),
		CreatedSince: since(now, img.Created),
		ID:           img.ID,
		Size:         humanSize(img.Size),
		VirtualSize:  humanSize4(img.Size),
		SharedSize:   "N/A",
		UniqueSize:   "N/A",
	}
	if trunc {
		base.ID = shortID(img.ID)
	}
	if img.SharedSize != -1 {
		base.SharedSize = humanSize4(img.SharedSize)
		base.UniqueSize = humanSize4(img.Size - img.SharedSize)
	}
	row := func(repo, tag, digest string) imageRow {
		r := base
		r.Repository, r.Tag, r.Digest = repo, tag, digest
		return r
	}
	if isDangling(img) {
		return []imageRow{row("<none>", "<none>", "<none>")}
	}
	repos, tags := groupByRepo(img.RepoTags, func(ref reference.Named) (string, bool) {
		nt, ok := ref.(reference.NamedTagged)
		if !ok {
			return "", false
		}
		return nt.Tag(), true
	})
	digestRepos, dgsts := groupByRepo(img.RepoDigests, func(ref reference.Named) (string, bool) {
		c, ok := ref.(reference.Canonical)
		if !ok {
			return "", false
		}
		return c.Digest().String(), true
	})
	var rows []imageRow
	for _, repo := range repos {
		for _, tag := range tags[repo] {
			if !digests || len(dgsts[repo]) == 0 {
				rows = append(rows, row(repo, tag, "<none>"))
				continue
			}
			for _, d := range dgsts[repo] {
				rows = append(rows, row(repo, tag, d))
			}
		}
	}
	for _, repo := range digestRepos {
		if _, tagged := tags[repo]; tagged {
			continue
		}
		if !digests {
			rows = append(rows, row(repo, "<none>", ""))
			continue
		}
		for _, d := range dgsts[repo] {
			rows = append(rows, row(repo, "<none>", d))
		}
	}
	return rows
}

// groupByRepo parses refs and groups what value extracts (tag or digest)
// by familiar repository name, keeping the order repositories first appear.
func groupByRepo(refs []string, value func(reference.Named) (string, bool)) ([]string, map[string][]string) {
	var order []string
	groups := map[string][]string{}
	for _, s := range refs {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		v, ok := value(ref)
		if !ok {
			continue
		}
		name := reference.FamiliarName(ref)
		if _, seen := groups[name]; !seen {
			order = append(order, name)
		}
		groups[name] = append(groups[name], v)
	}
	return order, groups
}

func naCount(n int64) string {
	if n == -1 {
		return "N/A"
	}
	return fmt.Sprint(n)
}

func newTagCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			_, err = c.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			if err != nil && strings.HasPrefix(err.Error(), "error parsing reference") {
				return fmt.Errorf("E%s", err.Error()[1:])
			}
			return err
		},
	}
}

func newImageInspectCommand(e *env, use string, anyObject bool) *cobra.Command {
	var format, typ string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch typ {
			case "":
				if anyObject {
					return runInspect(cmd, e, args, format, "")
				}
				return runInspect(cmd, e, args, format, "image")
			case "container", "image":
				return runInspect(cmd, e, args, format, typ)
			}
			return fmt.Errorf("unknown type: %q: must be one of \"container\", \"image\"", typ)
		},
	}
	if anyObject {
		cmd.Use = use + " [OPTIONS] NAME|ID [NAME|ID...]"
		cmd.Short = "Return low-level information on berth objects"
		cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// runInspect prints the daemon's documents as they came (so fields this
// client does not know survive), as an indented JSON array or through a
// template run over the decoded JSON. Errors, lookup or template, are
// reported in argument order after the output, as docker does.
//
// kind is "image", "container", or "" for whichever exists (inspectRaw).
func runInspect(cmd *cobra.Command, e *env, refs []string, format string, kind string) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	ins, err := newInspector(format)
	if err != nil {
		return err
	}
	var errs []string
	for _, ref := range refs {
		raw, typed, err := inspectRaw(cmd.Context(), e, c, ref, kind)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := ins.addTyped(raw, typed); err != nil {
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
}

// inspector collects inspect documents for one of three outputs: the
// indented array (no format), the compact array ("json") or a template.
type inspector struct {
	format string
	tmpl   *template.Template
	raws   []json.RawMessage
	out    bytes.Buffer
}

func newInspector(format string) (*inspector, error) {
	ins := &inspector{format: format}
	if format == "" || format == "json" {
		return ins, nil
	}
	t, err := parseTemplate(format)
	if err != nil {
		return nil, err
	}
	// The documents are maps: a misspelt key must fail as it would on a
	// struct, not print "<no value>".
	ins.tmpl = t.Option("missingkey=error")
	return ins, nil
}

func (ins *inspector) add(raw []byte) error {
	if ins.tmpl == nil {
		ins.raws = append(ins.raws, json.RawMessage(raw))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := ins.tmpl.Execute(&buf, doc); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	ins.out.Write(buf.Bytes())
	ins.out.WriteByte('\n')
	return nil
}

func (ins *inspector) flush(w io.Writer) error {
	var b []byte
	var err error
	switch {
	case ins.tmpl != nil && ins.out.Len() == 0:
		b = []byte("\n")
	case ins.tmpl != nil:
		b = ins.out.Bytes()
	case len(ins.raws) == 0:
		b = []byte("[]\n")
	case ins.format == "json":
		b, err = json.Marshal(ins.raws)
		b = append(b, '\n')
	default:
		b, err = json.MarshalIndent(ins.raws, "", "    ")
		b = append(b, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
