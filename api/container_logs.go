package api

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	berthcontainer "berth/container"
	"berth/errdefs"
)

// logTimeFormat is dockerd's timestamp prefix: RFC 3339 with all nine
// fraction digits, so the prefixes of a log line up.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func (s *server) containerLogs(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	opts, err := logsOptions(q)
	if err != nil {
		return err
	}
	entries, tty, err := s.opts.Containers.ContainerLogs(r.Context(), req.name, opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", streamMediaType(req.version, !tty))
	w.WriteHeader(http.StatusOK)
	flush(w)
	// Hide the Flusher: lines are flushed in batches, whenever the backend
	// has nothing more ready, rather than one syscall per line.
	out := newOutputs(struct{ io.Writer }{w}, !tty)
	stdout, stderr := out.stdout(), out.stderr()
	timestamps := boolValue(q, "timestamps")
	for {
		var e berthcontainer.LogEntry
		var ok bool
		select {
		case e, ok = <-entries:
		default:
			flush(w)
			select {
			case e, ok = <-entries:
			case <-r.Context().Done():
				return nil
			}
		}
		if !ok {
			return nil
		}
		line := e.Line
		if timestamps {
			line = append([]byte(e.Time.UTC().Format(logTimeFormat)+" "), line...)
		}
		dst := stdout
		if e.Stream == "stderr" {
			dst = stderr
		}
		if _, err := dst.Write(line); err != nil {
			return nil // the client left
		}
	}
}

func logsOptions(q url.Values) (berthcontainer.LogsOptions, error) {
	opts := berthcontainer.LogsOptions{
		Stdout: boolValue(q, "stdout"),
		Stderr: boolValue(q, "stderr"),
		Follow: boolValue(q, "follow"),
		Tail:   -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return opts, errdefs.Errorf(errdefs.ErrInvalidArgument, "Bad parameters: you must choose at least one stream")
	}
	var err error
	if opts.Since, err = parseUnixTime(q.Get("since")); err != nil {
		return opts, err
	}
	if opts.Until, err = parseUnixTime(q.Get("until")); err != nil {
		return opts, err
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		// dockerd shows everything for a tail it cannot read.
		if n, err := strconv.Atoi(t); err == nil && n >= 0 {
			opts.Tail = n
		}
	}
	return opts, nil
}

// parseUnixTime reads the "seconds[.nanoseconds]" form clients send for
// since and until; "" and "0" are no bound.
func parseUnixTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid timestamp %q: %s", s, errors.Unwrap(err))
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid timestamp %q: %s", s, errors.Unwrap(err))
		}
	}
	return time.Unix(sec, nsec), nil
}
