package build

import (
	"sync"

	"berth/image"
)

// ordered keeps the output of stages that run at once in Dockerfile
// order: the earliest unfinished stage writes through, later ones are
// held until every stage before them has finished.
type ordered struct {
	mu     sync.Mutex
	sink   Sink
	stages []*stageOutput
	cur    int
}

// stageOutput is one stage's share of the build output.
type stageOutput struct {
	o    *ordered
	i    int
	held []Event
	done bool
}

func newOrdered(sink Sink, n int) *ordered {
	o := &ordered{sink: sink}
	for i := range n {
		o.stages = append(o.stages, &stageOutput{o: o, i: i})
	}
	return o
}

func (s *stageOutput) emit(e Event) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if s.o.cur == s.i || s.o.cur >= len(s.o.stages) {
		s.o.sink(e)
		return
	}
	s.held = append(s.held, e)
}

// Write makes stageOutput the writer of step lines and RUN output.
func (s *stageOutput) Write(p []byte) (int, error) {
	s.emit(Event{Text: string(p)})
	return len(p), nil
}

func (s *stageOutput) progress(p image.Progress) {
	s.emit(Event{Progress: &p})
}

// finish marks the stage done and lets the next ones through.
func (s *stageOutput) finish() {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	s.done = true
	for o.cur < len(o.stages) && o.stages[o.cur].done {
		o.cur++
		if o.cur < len(o.stages) {
			next := o.stages[o.cur]
			for _, e := range next.held {
				o.sink(e)
			}
			next.held = nil
		}
	}
}

// flushAll lets every held event out, in order: a failed build shows all
// it did, the failing stage's output included.
func (o *ordered) flushAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ; o.cur < len(o.stages); o.cur++ {
		for _, e := range o.stages[o.cur].held {
			o.sink(e)
		}
		o.stages[o.cur].held = nil
	}
}
