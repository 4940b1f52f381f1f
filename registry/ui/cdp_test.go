package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// cdp is a DevTools protocol client attached to one page (flat session).
//
// The transport is --remote-debugging-pipe: JSON messages, each ended by a
// NUL byte, written to the browser's fd 3 and read from its fd 4.
type cdp struct {
	w       io.Writer
	r       *bufio.Reader
	wmu     sync.Mutex
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
	events  chan cdpMessage
	session string
}

type cdpMessage struct {
	ID        int                       `json:"id,omitempty"`
	Method    string                    `json:"method,omitempty"`
	Params    json.RawMessage           `json:"params,omitempty"`
	Result    json.RawMessage           `json:"result,omitempty"`
	Error     *struct{ Message string } `json:"error,omitempty"`
	SessionID string                    `json:"sessionId,omitempty"`
}

func newCDP(w io.Writer, r io.Reader) *cdp {
	c := &cdp{w: w, r: bufio.NewReaderSize(r, 1<<20), pending: map[int]chan cdpMessage{}, events: make(chan cdpMessage, 1024)}
	go c.readLoop()
	return c
}

func (c *cdp) readLoop() {
	defer close(c.events)
	for {
		b, err := c.r.ReadBytes(0)
		if err != nil {
			return
		}
		b = b[:len(b)-1]
		var m cdpMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case c.events <- m:
		default: // nobody is waiting for this many events; drop the oldest kind
		}
	}
}

// call sends a command (to the page session once attached) and waits for
// its result.
func (c *cdp) call(ctx context.Context, method string, params, result any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	session := c.session
	c.mu.Unlock()
	b, err := json.Marshal(cdpMessage{ID: id, Method: method, Params: mustJSON(params), SessionID: session})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	_, err = c.w.Write(append(b, 0))
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("{}")
	}
	b, _ := json.Marshal(v)
	return b
}
