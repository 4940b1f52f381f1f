package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eventTimeFormat is how docker prints event times: RFC 3339 with all nine
// fraction digits, in the local zone.
const eventTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func newEventsCommand(e *env) *cobra.Command {
	var since, until, format string
	filters := filterOpt{}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tmpl *template.Template
			switch format {
			case "":
			case "json":
				format = "{{json .}}"
				fallthrough
			default:
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				tmpl = t
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res := c.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: filters.Filters()})
			for {
				select {
				case m := <-res.Messages:
					if err := printEvent(e.stdout, tmpl, m); err != nil {
						return err
					}
				case err := <-res.Err:
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&format, "format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	f.StringVar(&since, "since", "", "Show all events created since timestamp")
	f.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// printEvent writes "TIME TYPE ACTION ID (k=v, ...)" with the attributes
// sorted, or the user's template.
func printEvent(w io.Writer, tmpl *template.Template, m events.Message) error {
	if tmpl != nil {
		if err := tmpl.Execute(w, m); err != nil {
			return err
		}
		_, err := fmt.Fprintln(w)
		return err
	}
	var b strings.Builder
	switch {
	case m.TimeNano != 0:
		b.WriteString(time.Unix(0, m.TimeNano).Format(eventTimeFormat) + " ")
	case m.Time != 0:
		b.WriteString(time.Unix(m.Time, 0).Format(eventTimeFormat) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
