package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"berth/errdefs"
	"berth/image"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
)

// ImageArchiveBackend is what `save` and `load` need of the image service.
type ImageArchiveBackend interface {
	// SaveImages resolves every name first (so an unknown one is an error
	// before any byte), then streams one tar archive to w.
	SaveImages(ctx context.Context, names []string, w io.Writer) error
	// LoadImages reads an archive and reports the images it stored.
	LoadImages(ctx context.Context, src io.Reader, opts image.LoadOptions) ([]image.LoadedImage, error)
}

func (s *server) addImageArchiveRoutes() {
	s.handle(http.MethodGet, "/images/get", s.saveImages)
	s.handle(http.MethodGet, "/images/{name}/get", s.saveImage)
	s.handle(http.MethodPost, "/images/load", s.loadImages)
}

func (s *server) archiveBackend() (ImageArchiveBackend, error) {
	if s.opts.ImageArchive == nil {
		return nil, fmt.Errorf("image save and load: %w", errdefs.ErrNotImplemented)
	}
	return s.opts.ImageArchive, nil
}

// saveImages serves GET /images/get?names=a&names=b.
func (s *server) saveImages(w http.ResponseWriter, r *http.Request, _ request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return fmt.Errorf("save: no image names given (names=): %w", errdefs.ErrInvalidArgument)
	}
	return s.streamSave(w, r, names)
}

// saveImage serves GET /images/{name}/get.
func (s *server) saveImage(w http.ResponseWriter, r *http.Request, req request) error {
	return s.streamSave(w, r, []string{req.name})
}

// streamSave sends the archive. An error before the first byte is an HTTP
// error; after it, the connection is cut so that the client sees a
// truncated body rather than a tar with JSON appended to it.
func (s *server) streamSave(w http.ResponseWriter, r *http.Request, names []string) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	cw := &countingWriter{w: w}
	err = b.SaveImages(r.Context(), names, cw)
	if err != nil && cw.n > 0 {
		if r.Context().Err() != nil {
			s.log.DebugContext(r.Context(), "save: client went away", "names", names, "err", err)
		} else {
			s.log.ErrorContext(r.Context(), "save failed mid-stream", "names", names, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return err
}

// countingWriter counts what went out and flushes after the first write,
// so the client has the status line as soon as the archive starts.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	first := c.n == 0
	n, err := c.w.Write(p)
	c.n += int64(n)
	if f, ok := c.w.(http.Flusher); ok && first && n > 0 {
		f.Flush()
	}
	return n, err
}

// loadImages serves POST /images/load: the body is the archive; the answer
// is a JSON-message stream as dockerd sends it: "Loading layer" progress
// per new layer (unless quiet), then a "Loaded image: …" stream line per
// tag ("Loaded image ID: …" for an untagged image). Like pull, the status
// line goes out with the first message, so a bad archive found before any
// progress is a plain HTTP error.
func (s *server) loadImages(w http.ResponseWriter, r *http.Request, _ request) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	quiet := true // dockerd's default when the parameter is absent
	if q.Has("quiet") {
		quiet = boolValue(q, "quiet")
	}
	out := &loadStream{w: w}
	var opts image.LoadOptions
	if !quiet {
		opts.Progress = out.progress
	}
	loaded, err := b.LoadImages(r.Context(), r.Body, opts)
	if err != nil {
		if !out.started {
			// Read the rest of the upload, so the client gets this
			// answer instead of a reset connection mid-send.
			io.Copy(io.Discard, r.Body)
		}
		return err
	}
	for _, img := range loaded {
		for _, line := range loadedLines(img) {
			if err := out.write(streamMessage{Message: jsonstream.Message{Stream: line}}); err != nil {
				return nil // the client left
			}
		}
	}
	if !out.started {
		out.start() // an empty archive still answers 200 with an empty stream
	}
	return nil
}

// loadedLines is what dockerd prints for one loaded image.
func loadedLines(img image.LoadedImage) []string {
	if len(img.Tags) == 0 {
		return []string{"Loaded image ID: " + img.ID.String() + "\n"}
	}
	var out []string
	for _, tag := range img.Tags {
		if prev, ok := img.Replaced[tag]; ok {
			out = append(out, fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string\n", tag, prev))
		}
		out = append(out, "Loaded image: "+tag+"\n")
	}
	return out
}

// loadStream writes the load's messages, starting the response with the
// first.
type loadStream struct {
	w       http.ResponseWriter
	started bool
}

// progressMessage is a progress line in dockerd's field order, with the
// pre-rendered bar that old clients print instead of progressDetail.
type progressMessage struct {
	Status   string               `json:"status"`
	Detail   *jsonstream.Progress `json:"progressDetail,omitempty"`
	Progress string               `json:"progress,omitempty"`
	ID       string               `json:"id,omitempty"`
}

func (l *loadStream) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "application/json")
	l.w.WriteHeader(http.StatusOK)
}

// write sends one message framed as writeStream frames them.
func (l *loadStream) write(m any) error {
	if !l.started {
		l.start()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := l.w.Write(append(b, '\r', '\n')); err != nil {
		return err
	}
	if f, ok := l.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (l *loadStream) progress(p image.LayerProgress) {
	m := progressMessage{
		Status:   "Loading layer",
		Detail:   &jsonstream.Progress{Current: p.Current, Total: p.Total},
		Progress: progressBar(p.Current, p.Total),
		ID:       shortDigest(p.DiffID.Encoded()),
	}
	// A write error means the client left; the request context ends the load.
	_ = l.write(m)
}

func shortDigest(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

// progressBar renders progress as dockerd does for a 200-column terminal:
// a 50-step bar and the sizes.
func progressBar(current, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	pct := min(int(float64(current)/float64(total)*100)/2, 50)
	bar := "[" + strings.Repeat("=", pct) + ">" + strings.Repeat(" ", 50-pct) + "] "
	counts := fmt.Sprintf("%8v/%v", units.HumanSize(float64(current)), units.HumanSize(float64(total)))
	if current > total {
		counts = fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	return bar + counts
}
