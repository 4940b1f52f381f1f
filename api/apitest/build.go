package apitest

import (
	"context"
	"io"
	"sync"

	"berth/build"

	buildtypes "github.com/moby/moby/api/types/build"
)

// Builds is an in-memory BuildBackend. Each build's options and context
// bytes are recorded; Script (when set) decides what the build reports
// and returns, otherwise it succeeds with an empty result.
type Builds struct {
	mu     sync.Mutex
	Script func(opts build.BuildOptions, context []byte, sink build.Sink) (*build.Result, error)
	Calls  []BuildCall
	// Pruned counts the prune calls; PruneReport is what they return.
	Pruned      int
	PruneReport buildtypes.CachePruneReport
}

// BuildCall is one recorded build.
type BuildCall struct {
	Options build.BuildOptions
	Context []byte
}

// Build records the call and runs Script.
func (b *Builds) Build(ctx context.Context, opts build.BuildOptions, body io.Reader, sink build.Sink) (*build.Result, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.Calls = append(b.Calls, BuildCall{Options: opts, Context: data})
	script := b.Script
	b.mu.Unlock()
	if script == nil {
		return &build.Result{}, nil
	}
	return script(opts, data, sink)
}

// Prune counts the call.
func (b *Builds) Prune(ctx context.Context) (buildtypes.CachePruneReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Pruned++
	return b.PruneReport, nil
}

// Last returns the most recent build call.
func (b *Builds) Last() BuildCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.Calls) == 0 {
		return BuildCall{}
	}
	return b.Calls[len(b.Calls)-1]
}
