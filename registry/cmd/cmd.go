// Package cmd is the `berth registry` command line: `serve` runs the
// registry, `user add|passwd|rm|ls` manages its accounts, `gc` collects
// garbage and `repo ls|rm` lists and deletes repositories.
package cmd

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"berth/errdefs"
	"berth/registry"
	"berth/registry/storage"
	"berth/registry/storage/fs"
	"berth/registry/storage/s3"
)

const usage = `usage: berth registry <command> [flags]

commands:
  serve                      run the registry (flags: --config, --addr, --tls-cert, --tls-key,
                             --root, --auth none|basic|token, --log-format text|json)
  user add NAME [--admin] [--public] [--password-stdin]
  user passwd NAME [--password-stdin]
  user rm NAME
  user ls [--json]           (user commands take --config / --root to find storage)
  gc [--dry-run] [--delete-untagged] [--delete-referrers] [--grace D] [--json]
                             collect garbage; safe while registries serve the storage
  repo ls                    list repositories
  repo rm NAME...            delete repositories (their blobs go at the next gc)
                             (gc and repo take --config / --root too)
`

// Main runs `berth registry` with args (after "registry") and returns the
// process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdin, stdout, stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "user":
		err = user(ctx, args[1:], stdin, stdout, stderr)
	case "gc":
		err = gc(ctx, args[1:], stdout, stderr)
	case "repo":
		err = repo(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q: %w", args[0], errdefs.ErrInvalidArgument)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth registry: %v\n", err)
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return 2
		}
		return 1
	}
	return 0
}

// configFlags are the flags shared by every subcommand to find the config.
type configFlags struct {
	config, root string
}

func (c *configFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&c.config, "config", "", "registry config file (JSON)")
	fl.StringVar(&c.root, "root", "", "storage root directory")
}

func (c *configFlags) load() (registry.Config, error) {
	cfg := registry.DefaultConfig()
	if c.config != "" {
		var err error
		if cfg, err = registry.LoadConfig(c.config); err != nil {
			return cfg, err
		}
	}
	if c.root != "" {
		cfg.Root = c.root
	}
	return cfg, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("berth registry "+name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	return fl
}

// parse parses flags placed before, between or after the positional
// arguments ("user add alice --admin"), which package flag alone does not.
// The positional arguments are left in fl.Args().
func parse(fl *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		if fl.NArg() == 0 {
			break
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
	return fl.Parse(append([]string{"--"}, pos...))
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// readPassword reads one line from stdin, prompting on stderr.
func readPassword(stdin io.Reader, stderr io.Writer, prompt bool) (string, error) {
	if prompt {
		fmt.Fprint(stderr, "Password: ")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// openStorage opens the configured backend: the one place that picks it.
func openStorage(ctx context.Context, cfg registry.Config) (storage.Driver, error) {
	c := cfg.Storage.S3
	if c == nil {
		return fs.New(cfg.Root)
	}
	return s3.New(ctx, s3.Config{Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint,
		PathStyle: c.PathStyle, AccessKey: c.AccessKey, SecretKey: c.SecretKey, MaxAttempts: c.MaxAttempts,
		PartSize: c.PartSize, Redirect: c.Redirect, RedirectExpiry: time.Duration(c.RedirectExpiry)})
}
