// Package cli is the berth command line. It talks to the daemon only through
// the Engine API client and its wire types, so it drives a real dockerd just
// as well. Output, usage errors and exit codes follow the docker CLI: 1 for
// daemon and argument errors, 125 for flag errors.
//
// Each command group lives in its own file and contributes its commands
// through commandGroups; adding a group is that file plus one line there.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// DefaultHost is the daemon socket used when neither -H nor DOCKER_HOST say
// otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// commandGroups lists every command group. Each returns its management
// command (if any) plus its top-level shortcuts, in help order.
func commandGroups() []func(*env) []*cobra.Command {
	return []func(*env) []*cobra.Command{
		imageCommands,
		archiveCommands,
		registryCommands,
		systemCommands,
		networkCommands,
		containerCommands,
		commitCommands,
		volumeCommands,
		buildCommands,
	}
}

// env is the state one invocation shares between its commands: the streams
// and the lazily connected API client.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	host     string
	logLevel string
	debug    bool
	log      *slog.Logger
	client   *client.Client
}

// Main runs the berth CLI with args (without the program name) and returns
// the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	defer e.close()
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return 0
	}
	var st statusError
	if errors.As(err, &st) {
		if st.msg != "" {
			fmt.Fprintln(stderr, st.msg)
		}
		return st.code
	}
	fmt.Fprintln(stderr, e.message(err))
	return 1
}

// message is how an error reads on stderr. The client names docker in its
// connection errors; berth users get the daemon they actually asked for.
func (e *env) message(err error) string {
	if client.IsErrConnectionFailed(err) {
		return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", e.host)
	}
	return err.Error()
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth [OPTIONS] COMMAND [ARG...]",
		Short: "A container engine and image registry",
		Long: `berth runs containers and stores images. It serves the Docker Engine API,
so this CLI also drives a docker daemon, and the docker CLI drives berth.

The daemon address comes from -H, else DOCKER_HOST, else ` + DefaultHost + `.`,
		Version:               version().Version,
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
		TraverseChildren:      true,
		Args:                  unknownSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stdout)
			return cmd.Help()
		},
		PersistentPreRunE: func(*cobra.Command, []string) error { return e.setup() },
	}
	root.SetVersionTemplate("berth version {{.Version}}, build " + version().GitCommit + "\n")
	// Global options are root flags, not persistent ones: like docker they
	// go before the command, which leaves -H free for `history -H`.
	flags := root.Flags()
	flags.StringVarP(&e.host, "host", "H", "", "Daemon socket to connect to (default "+DefaultHost+", or $DOCKER_HOST)")
	flags.BoolVarP(&e.debug, "debug", "D", false, "Enable debug mode")
	flags.StringVarP(&e.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error")`)
	flags.BoolP("version", "v", false, "Print version information and quit")
	for _, group := range commandGroups() {
		addCommands(root, group(e))
	}
	setUsage(root)
	return root
}

// addCommands adds a group's commands to root. A management command that
// root has already (say "image") gains the new one's subcommands instead,
// so a group can contribute `image save` beside its top-level `save`.
func addCommands(root *cobra.Command, cmds []*cobra.Command) {
	for _, c := range cmds {
		var existing *cobra.Command
		for _, have := range root.Commands() {
			if have.Name() == c.Name() && have.HasSubCommands() && c.HasSubCommands() {
				existing = have
			}
		}
		if existing == nil {
			root.AddCommand(c)
			continue
		}
		subs := c.Commands()
		c.RemoveCommand(subs...)
		existing.AddCommand(subs...)
	}
}

// setup resolves the daemon address and logger once flags are parsed.
func (e *env) setup() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.logLevel)); err != nil {
		return fmt.Errorf("Unable to parse logging level: %s", e.logLevel)
	}
	if e.debug {
		level = slog.LevelDebug
	}
	e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	if e.host == "" {
		e.host = os.Getenv(client.EnvOverrideHost)
	}
	if e.host == "" {
		e.host = DefaultHost
	}
	if _, err := client.ParseHostURL(e.host); err != nil {
		return fmt.Errorf("Failed to initialize: unable to resolve berth endpoint: %w", err)
	}
	return nil
}

// api returns the client, connecting on first use. The API version is
// negotiated with the daemon on the first request unless DOCKER_API_VERSION
// pins it.
func (e *env) api() (*client.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	e.log.Debug("connecting to daemon", "host", e.host)
	c, err := client.New(client.WithHost(e.host), client.WithAPIVersionFromEnv(), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("Failed to initialize: %w", err)
	}
	e.client = c
	return c, nil
}

func (e *env) close() {
	if e.client != nil {
		// Closing only drops idle connections; nothing to report.
		_ = e.client.Close()
	}
}

// statusError carries an exit code with an already formatted message.
type statusError struct {
	msg  string
	code int
}

func (s statusError) Error() string { return s.msg }

// usageError formats an argument error like docker: the reason, the usage
// line, and where to find help.
func usageError(cmd *cobra.Command, reason, hintVerb string, code int) error {
	return statusError{
		code: code,
		msg: fmt.Sprintf("%s\n\nUsage:  %s\n\n%s '%s --help' for more information",
			reason, cmd.UseLine(), hintVerb, cmd.CommandPath()),
	}
}

func flagError(cmd *cobra.Command, err error) error {
	return usageError(cmd, err.Error(), "Run", 125)
}

// unknownSubcommand rejects arguments to commands that only group others.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	reason := fmt.Sprintf("berth: unknown command: %s %s", cmd.CommandPath(), args[0])
	if !cmd.HasParent() {
		return statusError{code: 1, msg: reason + "\n\nRun 'berth --help' for more information"}
	}
	return usageError(cmd, reason, "Run", 1)
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usageError(cmd, fmt.Sprintf("berth: '%s' accepts no arguments", cmd.CommandPath()), "Run", 1)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return usageError(cmd, fmt.Sprintf("berth: '%s' requires %d %s", cmd.CommandPath(), n, plural(n, "argument")), "Run", 1)
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return usageError(cmd, fmt.Sprintf("berth: '%s' requires at least %d %s", cmd.CommandPath(), n, plural(n, "argument")), "See", 1)
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			return minArgs(lo)(cmd, args)
		case len(args) > hi:
			return usageError(cmd, fmt.Sprintf("berth: '%s' requires at most %d %s", cmd.CommandPath(), hi, plural(hi, "argument")), "Run", 1)
		}
		return nil
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
