package cli

import (
	"fmt"
	"io"
	"strings"
	"text/template"
	"unicode"

	"github.com/spf13/cobra"
)

// Command annotations read by the help template.
const (
	annotAliases  = "aliases"  // "berth image ls, berth image list, berth images"
	annotCategory = "category" // "common" puts a top-level command under Common Commands
)

const usageTemplate = `Usage:  {{if .HasAvailableSubCommands}}{{.CommandPath}}{{if not .HasParent}} [OPTIONS]{{end}} COMMAND{{else}}{{.UseLine}}{{end}}
{{- if .Short}}

{{or .Long .Short}}{{end}}
{{- if index .Annotations "aliases"}}

Aliases:
  {{index .Annotations "aliases"}}{{end}}
{{- if .HasExample}}

Examples:
{{.Example}}{{end}}
{{- if and (not .HasParent) .HasAvailableSubCommands}}{{with commonCommands .}}

Common Commands:{{range .}}
  {{rpad .Name 11}} {{.Short}}{{end}}{{end}}{{with managementCommands .}}

Management Commands:{{range .}}
  {{rpad .Name 11}} {{.Short}}{{end}}{{end}}{{with otherCommands .}}

Commands:{{range .}}
  {{rpad .Name 11}} {{.Short}}{{end}}{{end}}
{{- else if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name 11}} {{.Short}}{{end}}{{end}}{{end}}
{{- if and .HasParent .HasAvailableLocalFlags}}

Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
{{- if not .HasParent}}

Global Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
{{- if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.{{end}}
`

// helpTemplate renders usage and help pages. It is parsed per call with its
// own functions rather than through cobra.AddTemplateFunc, which would
// change cobra's package-wide state.
func renderUsage(c *cobra.Command, w io.Writer) error {
	funcs := template.FuncMap{
		"rpad":                    func(s string, n int) string { return fmt.Sprintf("%-*s", n, s) },
		"trimTrailingWhitespaces": func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) },
		"commonCommands": func(c *cobra.Command) []*cobra.Command {
			return filterCommands(c, func(s *cobra.Command) bool { return s.Annotations[annotCategory] == "common" })
		},
		"managementCommands": func(c *cobra.Command) []*cobra.Command {
			return filterCommands(c, func(s *cobra.Command) bool { return s.HasSubCommands() })
		},
		"otherCommands": func(c *cobra.Command) []*cobra.Command {
			return filterCommands(c, func(s *cobra.Command) bool {
				return !s.HasSubCommands() && s.Annotations[annotCategory] != "common"
			})
		},
	}
	t, err := template.New("usage").Funcs(funcs).Parse(usageTemplate)
	if err != nil {
		return err
	}
	return t.Execute(w, c)
}

func setUsage(root *cobra.Command) {
	root.SetUsageFunc(func(c *cobra.Command) error { return renderUsage(c, c.OutOrStderr()) })
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		// A failed help page can only be a broken stdout; cobra gives no
		// way to return it.
		_ = renderUsage(c, c.OutOrStdout())
	})
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetHelpCommand(&cobra.Command{Hidden: true})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		// docker lists -h/--help nowhere; it works all the same.
		c.InitDefaultHelpFlag()
		c.Flags().Lookup("help").Hidden = true
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

func filterCommands(c *cobra.Command, keep func(*cobra.Command) bool) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() && keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// managementCommand groups subcommands under a noun ("berth image ...");
// called alone it prints its help, like docker.
func managementCommand(e *env, use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  unknownSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stdout)
			return cmd.Help()
		},
		DisableFlagsInUseLine: true,
	}
	cmd.AddCommand(subs...)
	return cmd
}

// aliases records every spelling of a command for its help page.
func aliases(cmd *cobra.Command, all ...string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotAliases] = strings.Join(all, ", ")
	return cmd
}
