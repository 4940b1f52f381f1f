package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Main runs `berth daemon ARGS` and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	var flags Config
	var configFile string
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run the berth engine: serve the Docker Engine API on a unix socket",
		Long: `Run the berth engine.

The daemon owns images, containers and their storage under --data-root, and
serves the Docker Engine API on each --host, so the berth CLI, the docker CLI
and Docker SDKs can drive it. Settings may also come from a daemon.json
(--config-file) whose keys are Docker's; a setting given both as a flag and in
the file is an error.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) { set[f.Name] = true })
			cfg, err := resolveConfig(flags, set, configFile, cmd.Flags().Changed("config-file"))
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg, stderr)
		},
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.StringSliceVarP(&flags.Hosts, "host", "H", nil, "Daemon socket(s) to listen on (default "+DefaultHost+")")
	f.StringVar(&flags.DataRoot, "data-root", "", "Root directory of persistent state (default "+DefaultDataRoot+")")
	f.StringVar(&flags.ExecRoot, "exec-root", "", "Root directory for execution state (default "+DefaultExecRoot+")")
	f.StringVarP(&flags.Pidfile, "pidfile", "p", "", "Path to use for the daemon PID file (default <exec-root>/berth.pid)")
	f.StringVarP(&flags.StorageDriver, "storage-driver", "s", "", "Storage driver: overlay2 (default) or vfs")
	f.StringVar(&flags.DefaultRuntime, "default-runtime", "", "Default OCI runtime for containers (default runc)")
	f.StringVarP(&flags.LogLevel, "log-level", "l", "", `Log level ("debug"|"info"|"warn"|"error") (default "info")`)
	f.BoolVarP(&flags.Debug, "debug", "D", false, "Enable debug mode")
	f.StringVarP(&flags.Bridge, "bridge", "b", "", "Name of the default bridge network's interface (default berth0)")
	f.StringVar(&flags.Bip, "bip", "", "IPv4 address and prefix of the default bridge (e.g. 172.17.0.1/16)")
	f.StringVar(&configFile, "config-file", DefaultConfig, "Daemon configuration file (daemon.json)")
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintf(stderr, "berth daemon: %v\n", err)
		return 1
	}
	return 0
}

// resolveConfig merges daemon.json (when present, or required when named
// explicitly) with the flags.
func resolveConfig(flags Config, set map[string]bool, path string, explicit bool) (Config, error) {
	if _, err := os.Stat(path); err != nil {
		if explicit || !errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		return flags, nil
	}
	file, keys, err := LoadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Merge(file, keys, flags, set)
}

func run(ctx context.Context, cfg Config, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	log.Info("berth daemon started", "data-root", d.cfg.DataRoot, "storage-driver", d.cfg.StorageDriver, "pid", os.Getpid())
	if err := d.Serve(ctx); err != nil {
		return err
	}
	log.Info("berth daemon stopped")
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal":
		level = slog.LevelError
	}
	if cfg.Debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
