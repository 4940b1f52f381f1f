package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"berth/errdefs"
)

// ExitStatus is how a container's init (or an exec'd process) ended.
type ExitStatus struct {
	Pid        int       `json:"pid"`
	Code       int       `json:"exitCode"`         // exit code, or 128+signal
	Signal     int       `json:"signal,omitempty"` // the killing signal, if any
	FinishedAt time.Time `json:"finishedAt"`
}

func exitStatusOf(pid int, ws syscall.WaitStatus, at time.Time) ExitStatus {
	st := ExitStatus{Pid: pid, FinishedAt: at.UTC()}
	switch {
	case ws.Signaled():
		st.Signal = int(ws.Signal())
		st.Code = 128 + st.Signal
	default:
		st.Code = ws.ExitStatus()
	}
	return st
}

// ReadExit returns the exit status the shim recorded in stateDir, so the
// daemon learns of exits that happened while it or the shim was down. It
// fails with ErrNotFound while the container has not exited.
func ReadExit(stateDir string) (ExitStatus, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, exitFile))
	if errors.Is(err, os.ErrNotExist) {
		return ExitStatus{}, fmt.Errorf("exit status in %s: %w", stateDir, errdefs.ErrNotFound)
	}
	if err != nil {
		return ExitStatus{}, fmt.Errorf("exit status: %w", err)
	}
	var st ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return ExitStatus{}, fmt.Errorf("exit status in %s: %w: %v", stateDir, errdefs.ErrInvalidArgument, err)
	}
	return st, nil
}

// writeFileAtomic replaces path with data by temp file and rename, so a
// reader finds the old file or the complete new one. There is no fsync:
// the shim's files live in the exec root, runtime state that a host crash
// (which also ends every container) makes moot; what must outlive a shim
// or daemon crash, with the host up, the page cache keeps. The exit is on
// the path of every `run`, where two fsyncs on a busy disk cost
// milliseconds.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
