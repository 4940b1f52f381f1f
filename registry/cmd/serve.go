package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"berth/registry"
	"berth/registry/server"
	"berth/registry/storage"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fl := newFlagSet("serve", stderr)
	var cf configFlags
	cf.register(fl)
	addr := fl.String("addr", "", "listen address (default 127.0.0.1:5000)")
	cert := fl.String("tls-cert", "", "TLS certificate file")
	key := fl.String("tls-key", "", "TLS key file")
	mode := fl.String("auth", "", "authentication: none, basic or token")
	logFormat := fl.String("log-format", "", "log format: text or json")
	if err := parse(fl, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	override(&cfg.Addr, *addr)
	override(&cfg.TLS.Cert, *cert)
	override(&cfg.TLS.Key, *key)
	override(&cfg.Auth.Mode, *mode)
	override(&cfg.LogFormat, *logFormat)
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)
	d, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	h, err := registry.NewHandler(ctx, cfg, d, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	err = serveOn(ctx, ln, h, cfg, d, log)
	// Webhook events of the last requests go out before the process ends.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cerr := h.Close(cctx); cerr != nil {
		log.Warn("notifications not all delivered at shutdown", "err", cerr)
	}
	return err
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// serveOn serves until ctx ends, then drains requests for up to 10 s.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler, cfg registry.Config, d storage.Driver, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go purgeLoop(ctx, d, time.Duration(cfg.UploadTTL), log)
	go gcLoop(ctx, d, time.Duration(cfg.GC.Interval), cfg.GCOptions(log), log)
	errc := make(chan error, 1)
	go func() {
		log.Info("registry listening", "addr", ln.Addr().String(), "auth", cfg.Auth.Mode, "root", cfg.Root, "tls", cfg.TLS.Cert != "")
		if cfg.TLS.Cert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLS.Cert, cfg.TLS.Key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// purgeLoop removes abandoned uploads every so often.
func purgeLoop(ctx context.Context, d storage.Driver, ttl time.Duration, log *slog.Logger) {
	if ttl <= 0 {
		return
	}
	t := time.NewTicker(min(ttl/4, time.Hour))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := server.PurgeUploads(ctx, d, now.Add(-ttl))
			if err != nil {
				log.Warn("purge uploads", "err", err)
			} else if n > 0 {
				log.Info("purged abandoned uploads", "count", n)
			}
		}
	}
}
