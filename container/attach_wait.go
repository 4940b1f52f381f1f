package container

import "berth/task"

// handOver gives the new shim to attachers that were waiting for the
// container to start, before the process runs, so no output is missed.
// e.mu is held.
func (s *Service) handOver(e *entry, shim *task.Shim) {
	for _, w := range e.pending {
		done := make(chan struct{})
		w <- pendingStart{shim: shim, done: done}
		<-done
	}
	e.pending = nil
}

// pendingStart is what a waiting attacher receives: the shim to attach to,
// and a channel to close once attached.
type pendingStart struct {
	shim *task.Shim
	done chan struct{}
}
