package container

import (
	"fmt"
	"time"

	"berth/errdefs"
)

// Status is a container's one state; Docker's booleans (Running, Paused,
// Restarting, Dead) are derived from it, so they can never disagree.
type Status string

// The statuses, as `inspect` shows them.
const (
	StatusCreated    Status = "created"
	StatusRunning    Status = "running"
	StatusPaused     Status = "paused"
	StatusRestarting Status = "restarting"
	StatusRemoving   Status = "removing"
	StatusExited     Status = "exited"
	StatusDead       Status = "dead"
)

// transitions lists the allowed moves; anything else is a bug or a race
// that the caller must turn into a user-facing error first.
var transitions = map[Status][]Status{
	StatusCreated:    {StatusRunning, StatusRemoving, StatusExited, StatusDead},
	StatusRunning:    {StatusPaused, StatusExited, StatusRestarting, StatusDead},
	StatusPaused:     {StatusRunning, StatusExited, StatusDead},
	StatusRestarting: {StatusRunning, StatusExited, StatusRemoving, StatusDead},
	StatusExited:     {StatusRunning, StatusRestarting, StatusRemoving, StatusDead},
	StatusRemoving:   {StatusDead, StatusExited},
	StatusDead:       {StatusRemoving},
}

// State is the persisted runtime state of a container.
type State struct {
	Status       Status    `json:"status"`
	Pid          int       `json:"pid,omitempty"`
	ExitCode     int       `json:"exit_code"`
	Error        string    `json:"error,omitempty"`
	OOMKilled    bool      `json:"oom_killed,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	RestartCount int       `json:"restart_count,omitempty"`
	// ManuallyStopped is set by stop/kill from the user, so that the
	// unless-stopped and always policies know not to restart after a
	// daemon restart (Docker's HasBeenManuallyStopped).
	ManuallyStopped bool `json:"manually_stopped,omitempty"`
	HasBeenStarted  bool `json:"has_been_started,omitempty"`
}

func (s *State) moveTo(next Status) error {
	for _, ok := range transitions[s.Status] {
		if ok == next {
			s.Status = next
			return nil
		}
	}
	return fmt.Errorf("container state %s -> %s: %w", s.Status, next, errdefs.ErrFailedPrecondition)
}

// IsRunning is true while the container's processes exist.
func (s *State) IsRunning() bool {
	return s.Status == StatusRunning || s.Status == StatusPaused
}
