package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/jsonstream"
)

// streamLine is a JSON-message stream entry with the legacy "error" string
// older daemons send instead of errorDetail.
type streamLine struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// displayStream prints a daemon's JSON-message stream for a non-terminal:
// one line per status or stream chunk, ids as "id: " prefixes. The first
// error message in the stream ends the display and is returned.
func displayStream(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m streamLine
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read daemon stream: %w", err)
		}
		switch {
		case m.Error != nil:
			return errors.New(m.Error.Message)
		case m.ErrorMessage != "":
			return errors.New(m.ErrorMessage)
		}
		prefix := ""
		if m.ID != "" {
			prefix = m.ID + ": "
		}
		var err error
		if m.Stream != "" {
			_, err = fmt.Fprint(w, prefix+m.Stream)
		} else {
			_, err = fmt.Fprintln(w, prefix+m.Status)
		}
		if err != nil {
			return err
		}
	}
}
