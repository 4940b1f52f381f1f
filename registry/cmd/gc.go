package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"berth/errdefs"
	"berth/registry/server"
	"berth/registry/storage"
)

// gc runs `berth registry gc`: a collection over the storage, safe while
// registry processes serve it.
func gc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlagSet("gc", stderr)
	var cf configFlags
	cf.register(fl)
	dry := fl.Bool("dry-run", false, "report what would be deleted; delete nothing")
	untagged := fl.Bool("delete-untagged", false, "also collect manifests no tag reaches (default from the config)")
	referrers := fl.Bool("delete-referrers", false, "with --delete-untagged, collect untagged referrers of live manifests too")
	grace := fl.Duration("grace", 0, "keep everything younger than this (default from the config, else 1h)")
	asJSON := fl.Bool("json", false, "print the report as JSON")
	if err := parse(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("gc: unexpected argument %q: %w", fl.Arg(0), errdefs.ErrInvalidArgument)
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	d, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	opts := cfg.GCOptions(newLogger(cfg.LogFormat, stderr))
	opts.DryRun = *dry
	opts.DeleteUntagged = opts.DeleteUntagged || *untagged
	opts.DeleteReferrers = opts.DeleteReferrers || *referrers
	if *grace > 0 {
		opts.Grace = *grace
	}
	rep, err := server.Collect(ctx, d, opts)
	if err != nil {
		return err
	}
	return printReport(stdout, rep, *asJSON)
}

func printReport(w io.Writer, rep *server.GCReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
		for _, c := range rep.Candidates {
			fmt.Fprintln(w, c)
		}
	}
	fmt.Fprintf(w, "%d repositories, %d manifests, %d blobs (%d live)\n", rep.Repositories, rep.Manifests, rep.Blobs, rep.LiveBlobs)
	fmt.Fprintf(w, "%s %d manifests, %d blobs (%d bytes), %d orphaned uploads; kept %d a push referenced meanwhile\n",
		verb, rep.DeletedManifests, rep.DeletedBlobs, rep.DeletedBytes, rep.DeletedData, rep.Kept)
	fmt.Fprintf(w, "took %s (mark %s, sweep %s)\n", rep.Total.Round(time.Millisecond), rep.Mark.Round(time.Millisecond), rep.Sweep.Round(time.Millisecond))
	return nil
}

// repo runs `berth registry repo ls|rm`.
func repo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "ls" && args[0] != "rm") {
		return fmt.Errorf("repo: want ls or rm: %w", errdefs.ErrInvalidArgument)
	}
	fl := newFlagSet("repo "+args[0], stderr)
	var cf configFlags
	cf.register(fl)
	if err := parse(fl, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	d, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	if args[0] == "ls" {
		names, err := server.Repositories(ctx, d)
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
		return err
	}
	if fl.NArg() == 0 {
		return fmt.Errorf("repo rm: want repository names: %w", errdefs.ErrInvalidArgument)
	}
	for _, name := range fl.Args() {
		if err := server.DeleteRepository(ctx, d, name); err != nil {
			return err
		}
		fmt.Fprintln(stdout, name)
	}
	return nil
}

// gcLoop collects every interval (with a tenth of jitter, so replicas
// over one storage rarely start together; the lock settles the rest). A
// replica whose turn comes less than half an interval after a collection
// another replica ran skips it, so N replicas collect about once per
// interval, not N times.
func gcLoop(ctx context.Context, d storage.Driver, interval time.Duration, opts server.GCOptions, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	for {
		wait := interval + time.Duration(rand.Int64N(int64(interval/10)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if last, err := server.LastGC(ctx, d); err == nil && !last.Active && time.Since(last.Finished) < interval/2 {
			log.Debug("scheduled garbage collection skipped: another replica collected", "run", last.Run, "finished", last.Finished)
			continue
		}
		rep, err := server.Collect(ctx, d, opts)
		switch {
		case errors.Is(err, errdefs.ErrConflict):
			log.Info("scheduled garbage collection skipped", "reason", err)
		case err != nil && ctx.Err() == nil:
			log.Warn("scheduled garbage collection", "err", err)
		case err == nil:
			log.Info("garbage collected", "run", rep.Run, "blobs", rep.DeletedBlobs, "bytes", rep.DeletedBytes,
				"manifests", rep.DeletedManifests, "kept", rep.Kept, "took", rep.Total)
		}
	}
}
