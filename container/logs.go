package container

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"berth/errdefs"
)

// jsonLine is one line of the json-file log the shim writes.
type jsonLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// ContainerLogs reads the json-file log, oldest rotated file first, and
// with Follow keeps reading the live file until the container stops.
func (s *Service) ContainerLogs(ctx context.Context, name string, opts LogsOptions) (<-chan LogEntry, bool, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	rec := e.rec
	exited := e.exited
	running := rec.State.IsRunning()
	e.mu.Unlock()
	if d := rec.HostConfig.LogConfig.Type; d != "" && d != "json-file" {
		return nil, false, errdefs.Errorf(errdefs.ErrInvalidArgument, `configured logging driver does not support reading`)
	}
	out := make(chan LogEntry, 64)
	go func() {
		defer close(out)
		r := &logReader{opts: opts, out: out, ctx: ctx}
		base := s.logPath(rec.ID)
		files := rotatedFiles(base)
		if opts.Tail >= 0 {
			r.tail = make([]LogEntry, 0, opts.Tail)
		}
		for _, f := range files {
			if !r.readFile(f) {
				return
			}
		}
		if !r.readFile(base) {
			return
		}
		if !r.flushTail() || !opts.Follow || !running {
			return
		}
		r.follow(base, exited)
	}()
	return out, rec.Config.Tty, nil
}

func rotatedFiles(base string) []string {
	var files []string
	for i := 1; ; i++ {
		p := base + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		files = append([]string{p}, files...)
	}
	return files
}

type logReader struct {
	ctx    context.Context
	opts   LogsOptions
	out    chan<- LogEntry
	tail   []LogEntry // a ring of the last Tail entries, when tailing
	offset int64      // how far the live file has been read
}

// readFile reads a whole file; false means the consumer went away.
func (r *logReader) readFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	n, ok := r.readFrom(f)
	r.offset = n
	return ok
}

func (r *logReader) readFrom(f io.Reader) (int64, bool) {
	br := bufio.NewReaderSize(f, 64<<10)
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return n, true // a partial last line is read again later
		}
		n += int64(len(line))
		if !r.emit(line) {
			return n, false
		}
	}
}

func (r *logReader) emit(raw []byte) bool {
	var l jsonLine
	if json.Unmarshal(raw, &l) != nil {
		return true
	}
	if (l.Stream == "stdout" && !r.opts.Stdout) || (l.Stream == "stderr" && !r.opts.Stderr) {
		return true
	}
	if (!r.opts.Since.IsZero() && l.Time.Before(r.opts.Since)) || (!r.opts.Until.IsZero() && l.Time.After(r.opts.Until)) {
		return true
	}
	ent := LogEntry{Stream: l.Stream, Line: []byte(l.Log), Time: l.Time}
	if r.tail != nil {
		if r.opts.Tail == 0 {
			return true
		}
		if len(r.tail) == r.opts.Tail {
			r.tail = r.tail[1:]
		}
		r.tail = append(r.tail, ent)
		return true
	}
	select {
	case r.out <- ent:
		return true
	case <-r.ctx.Done():
		return false
	}
}

func (r *logReader) flushTail() bool {
	pending := r.tail
	r.tail = nil
	for _, ent := range pending {
		select {
		case r.out <- ent:
		case <-r.ctx.Done():
			return false
		}
	}
	return true
}

// follow polls the live file for new lines until the container exits or
// the consumer goes away; a rotation (new inode) restarts at its top.
func (r *logReader) follow(path string, exited <-chan struct{}) {
	st, _ := os.Stat(path)
	done := false
	for {
		f, err := os.Open(path)
		if err == nil {
			cur, _ := f.Stat()
			if st != nil && cur != nil && !os.SameFile(st, cur) {
				r.offset, st = 0, cur
			}
			f.Seek(r.offset, io.SeekStart)
			n, ok := r.readFrom(f)
			f.Close()
			r.offset += n
			if !ok {
				return
			}
		}
		if done {
			return
		}
		select {
		case <-r.ctx.Done():
			return
		case <-exited:
			done = true // one last read for the final lines
		case <-time.After(100 * time.Millisecond):
		}
	}
}
