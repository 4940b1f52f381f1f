package task

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper collects the exit status of the processes the shim adopts as
// subreaper (the container's init and exec'd processes, reparented to the
// shim once the runtime exits). It waits only for pids it was asked to
// watch, so os/exec keeps reaping the runtime invocations it started.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus
	sigs    chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{waiting: map[int]chan syscall.WaitStatus{}, sigs: make(chan os.Signal, 1)}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go func() {
		for range r.sigs {
			r.reap()
		}
	}()
	return r
}

// watch returns a channel that receives pid's wait status once it exits.
// A process that already exited is collected at once.
func (r *reaper) watch(pid int) <-chan syscall.WaitStatus {
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	r.waiting[pid] = ch
	r.mu.Unlock()
	r.reap()
	return ch
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		var ws unix.WaitStatus
		n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			n, err = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
		if err != nil || n != pid {
			continue
		}
		if !ws.Exited() && !ws.Signaled() {
			continue
		}
		ch <- syscall.WaitStatus(ws)
		delete(r.waiting, pid)
	}
}
