package task

import (
	"errors"
	"testing"

	"berth/errdefs"
)

func TestExecFailureClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		msg  string
		code int
	}{
		{`unable to start container process: exec: "/no/such": stat /no/such: no such file or directory`, 127},
		{`unable to start container process: exec: "nosuch": executable file not found in $PATH`, 127},
		{`unable to start container process: exec: "/etc/passwd": permission denied`, 126},
		{"executable file `nosuch` not found in $PATH: No such file or directory", 127},
		{"exec `/etc/passwd`: Permission denied", 126},
		{"container does not exist", 0},
		{"open /dev/null: no such file or directory", 0},
	}
	for _, tc := range cases {
		re := &RuntimeError{Runtime: "runc", Op: "create", ID: "c", Msg: tc.msg}
		re.classify()
		code, ok := ExecFailureCode(re)
		if ok != (tc.code != 0) || code != tc.code {
			t.Errorf("%q: code %d, %v; want %d", tc.msg, code, ok, tc.code)
		}
		// The classification must survive the shim protocol.
		back := fromWire(toWire(re))
		if c2, _ := ExecFailureCode(back); c2 != code || !errors.Is(back, errdefs.ErrInvalidArgument) != (code == 0) {
			t.Errorf("%q over the wire: %v (code %d)", tc.msg, back, c2)
		}
	}
}

func TestRuntimeErrorKinds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		op, msg string
		kind    error
	}{
		{"state", "container does not exist", errdefs.ErrNotFound},
		{"state", "error opening file `/run/crun/x/status`: No such file or directory", errdefs.ErrNotFound},
		{"exec", "error opening file `/run/crun/exec-x/status`: No such file or directory", errdefs.ErrNotFound},
		{"create", "container with given ID already exists", errdefs.ErrAlreadyExists},
		{"create", "container `x` already exists", errdefs.ErrAlreadyExists},
		{"start", "cannot start a container that has stopped", errdefs.ErrConflict},
		{"kill", "container not running", errdefs.ErrConflict},
		{"create", "cgroups in hybrid mode not supported, drop all controllers from cgroupv2", errdefs.ErrFailedPrecondition},
		{"create", "error setting rlimit type 7: operation not permitted", errdefs.ErrFailedPrecondition},
		{"create", "setrlimit `RLIMIT_NOFILE`: Operation not permitted", errdefs.ErrFailedPrecondition},
		{"create", "unable to start container process: exec: \"x\": permission denied", errdefs.ErrInvalidArgument},
		{"kill", "something unforeseen", nil},
	}
	for _, tc := range cases {
		re := &RuntimeError{Runtime: "runc", Op: tc.op, ID: "x", Msg: tc.msg}
		re.classify()
		if !errors.Is(re.Kind, tc.kind) {
			t.Errorf("%s %q: kind %v, want %v", tc.op, tc.msg, re.Kind, tc.kind)
		}
		if errors.Is(tc.kind, errdefs.ErrFailedPrecondition) && re.Hint == "" {
			t.Errorf("%q: no hint", tc.msg)
		}
	}
}
