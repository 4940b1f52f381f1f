package cli

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"text/tabwriter"
	"text/template"
	"time"

	buildinfo "berth/version"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// systemCommands is the system group: `berth system ...`, `version` and
// `info`.
func systemCommands(e *env) []*cobra.Command {
	info := aliases(newInfoCommand(e, "info"), "berth system info", "berth info")
	info.Annotations[annotCategory] = "common"
	ver := newVersionCommand(e)
	ver.Annotations = map[string]string{annotCategory: "common"}
	return []*cobra.Command{
		managementCommand(e, "system", "Manage berth",
			newDiskUsageCommand(e),
			aliases(newInfoCommand(e, "info"), "berth system info", "berth info"),
		),
		ver,
		info,
	}
}

// clientVersion is the Client: half of `version`; JSON keys as docker's.
type clientVersion struct {
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
	BuildTime         string `json:",omitempty"`
	Context           string
}

// version describes this binary: what the build stamped into berth/version
// (a leaf package of three strings, the one berth import besides the API
// types), completed from the VCS data the Go toolchain embeds.
func version() clientVersion {
	v := clientVersion{
		Version: buildinfo.Version, GitCommit: buildinfo.GitCommit, BuildTime: buildinfo.BuildTime,
		GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
		APIVersion: client.MaxAPIVersion, DefaultAPIVersion: client.MaxAPIVersion, Context: "default",
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && (v.GitCommit == "" || v.GitCommit == "unknown"):
			v.GitCommit = s.Value[:min(7, len(s.Value))]
		case s.Key == "vcs.time" && v.BuildTime == "":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.BuildTime = t.Format(time.ANSIC)
			}
		}
	}
	return v
}

// serverVersion is the Server: half of `version`, shaped like the daemon's
// /version document so --format keys match docker's.
type serverVersion struct {
	Platform      struct{ Name string }
	Components    []system.ComponentVersion
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string
	BuildTime     string
}

type versionDoc struct {
	Client clientVersion
	Server *serverVersion
}

const versionTemplate = `Client:
 Version:	{{.Client.Version}}
 API version:	{{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:	{{.Client.GoVersion}}
 Git commit:	{{.Client.GitCommit}}
 Built:	{{.Client.BuildTime}}
 OS/Arch:	{{.Client.Os}}/{{.Client.Arch}}
 Context:	{{.Client.Context}}
{{- with .Server}}

Server:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
{{- range $c := .Components}}
 {{$c.Name}}:
{{- if eq $c.Name "Engine"}}
  Version:	{{$c.Version}}
  API version:	{{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:	{{index $c.Details "GoVersion"}}
  Git commit:	{{index $c.Details "GitCommit"}}
  Built:	{{index $c.Details "BuildTime"}}
  OS/Arch:	{{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:	{{index $c.Details "Experimental"}}
{{- else}}
  Version:	{{$c.Version}}
{{- range $k := detailKeys $c.Details}}
  {{$k}}:	{{index $c.Details $k}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}
`

func newVersionCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc := versionDoc{Client: version()}
			c, err := e.api()
			if err != nil {
				return err
			}
			sv, serr := c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			doc.Client.APIVersion = c.ClientVersion()
			if serr == nil {
				doc.Server = toServerVersion(sv)
			}
			if err := renderVersion(e.stdout, format, doc); err != nil {
				return err
			}
			return serr
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

func toServerVersion(sv client.ServerVersionResult) *serverVersion {
	s := &serverVersion{
		Components: sv.Components, Version: sv.Version, APIVersion: sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion, Os: sv.Os, Arch: sv.Arch,
	}
	s.Platform.Name = sv.Platform.Name
	for _, c := range sv.Components {
		if c.Name == "Engine" {
			s.GitCommit, s.GoVersion = c.Details["GitCommit"], c.Details["GoVersion"]
			s.KernelVersion, s.BuildTime = c.Details["KernelVersion"], c.Details["BuildTime"]
		}
	}
	return s
}

// renderVersion prints the docker-style report, aligned by a tabwriter
// (min width 20, padding 1), or the user's template.
func renderVersion(w io.Writer, format string, doc versionDoc) error {
	if format == "json" {
		format = "{{json .}}"
	}
	if format != "" {
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
	t := template.Must(template.New("version").Funcs(template.FuncMap{
		"detailKeys": func(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) },
	}).Parse(versionTemplate))
	tw := tabwriter.NewWriter(w, 20, 1, 1, ' ', 0)
	if err := t.Execute(tw, doc); err != nil {
		return err
	}
	return tw.Flush()
}
