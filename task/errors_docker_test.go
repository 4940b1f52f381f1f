package task

import (
	"errors"
	"strings"
	"testing"

	"berth/errdefs"
)

// TestRuntimeErrorWording pins dockerd's shape of the messages users see
// when a container's command cannot start (`docker run busybox nope`).
func TestRuntimeErrorWording(t *testing.T) {
	t.Parallel()
	cases := []struct {
		op, msg, hint, want string
	}{
		{"create", `runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH`, "",
			`failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`},
		{"exec", `exec failed: unable to start container process: exec: "/etc/passwd": permission denied`, "",
			`OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown`},
		{"start", "cannot start a container that has stopped", "",
			"OCI runtime start failed: cannot start a container that has stopped: unknown"},
		{"create", "cgroups in hybrid mode not supported", "use runc",
			"failed to create task for container: failed to create shim task: OCI runtime create failed: cgroups in hybrid mode not supported: unknown (use runc)"},
		{"kill", "container not running", "", "runc kill c1: container not running"},
	}
	for _, tc := range cases {
		re := &RuntimeError{Runtime: "runc", Op: tc.op, ID: "c1", Msg: tc.msg, Hint: tc.hint}
		if got := re.Error(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.op, got, tc.want)
		}
	}
}

// TestCrunCgroup2Hints: what crun 1.8 says on a cgroup v2 host where root
// cannot raise RLIMIT_MEMLOCK, and of a spec newer than it knows.
func TestCrunCgroup2Hints(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"setrlimit (RLIM_MEMLOCK): Operation not permitted", "unknown version specified"} {
		re := &RuntimeError{Runtime: "crun", Op: "create", ID: "c1", Msg: msg}
		re.classify()
		if !errors.Is(re, errdefs.ErrFailedPrecondition) || !strings.Contains(re.Hint, "use runc") {
			t.Errorf("%q: kind %v, hint %q", msg, re.Kind, re.Hint)
		}
	}
}
