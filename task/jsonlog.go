package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Log rotation defaults, Docker's json-file values for max-size and max-file
// when rotation is asked for.
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 3
)

// maxLogLine is where a line without newline is cut into a partial entry,
// as Docker's log copier does with its 16 KiB buffer.
const maxLogLine = 16 << 10

// LogConfig places and bounds a container's json-file log.
type LogConfig struct {
	Path     string // <container dir>/<id>-json.log; empty disables logging
	MaxSize  int64  // rotate when the file reaches this size; 0 never rotates
	MaxFiles int    // files kept including the current one; 0 means DefaultLogMaxFiles
}

// logEntry is one line of Docker's json-file format; field order matters to
// tools that compare files byte for byte.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// jsonLog writes stdout/stderr as Docker's json-file log, one entry per
// line, rotating to <path>.1 … <path>.<MaxFiles-1>.
type jsonLog struct {
	mu      sync.Mutex
	cfg     LogConfig
	f       *os.File
	size    int64
	pending map[string][]byte // a stream's unterminated line
	closed  bool              // output that outlives the init is dropped
}

func openJSONLog(cfg LogConfig) (*jsonLog, error) {
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultLogMaxFiles
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("json log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("json log: %w", err)
	}
	return &jsonLog{cfg: cfg, f: f, size: st.Size(), pending: map[string][]byte{}}, nil
}

// write logs p from stream, completing lines left over from earlier writes.
func (l *jsonLog) write(stream string, p []byte, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	buf := append(l.pending[stream], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if err := l.entry(stream, buf[:i+1], now); err != nil {
			return err
		}
		buf = buf[i+1:]
	}
	for len(buf) >= maxLogLine {
		if err := l.entry(stream, buf[:maxLogLine], now); err != nil {
			return err
		}
		buf = buf[maxLogLine:]
	}
	l.pending[stream] = append([]byte(nil), buf...)
	return nil
}

// close writes unterminated lines as they are, like Docker at stream end.
func (l *jsonLog) close(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var firstErr error
	for _, stream := range []string{"stdout", "stderr"} {
		if p := l.pending[stream]; len(p) > 0 {
			if err := l.entry(stream, p, now); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	if err := l.f.Close(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("json log: %w", err)
	}
	return firstErr
}

func (l *jsonLog) entry(stream string, line []byte, now time.Time) error {
	if l.cfg.MaxSize > 0 && l.size >= l.cfg.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	b, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: now.UTC()})
	if err != nil {
		return fmt.Errorf("json log: %w", err)
	}
	b = append(b, '\n')
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("json log: %w", err)
	}
	return nil
}

// rotate shifts <path>.i to <path>.i+1, dropping the oldest, and starts an
// empty current file; with MaxFiles 1 the current file is truncated.
func (l *jsonLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("json log rotate: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if l.cfg.MaxFiles == 1 {
		flags |= os.O_TRUNC
	} else {
		for i := l.cfg.MaxFiles - 1; i > 1; i-- {
			err := os.Rename(l.name(i-1), l.name(i))
			if err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("json log rotate: %w", err)
			}
		}
		if err := os.Rename(l.cfg.Path, l.name(1)); err != nil {
			return fmt.Errorf("json log rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.cfg.Path, flags, 0o640)
	if err != nil {
		return fmt.Errorf("json log rotate: %w", err)
	}
	l.f, l.size = f, 0
	return nil
}

func (l *jsonLog) name(i int) string { return l.cfg.Path + "." + strconv.Itoa(i) }
