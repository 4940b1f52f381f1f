package task

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// RuntimeError is a failed invocation of the OCI runtime. Msg is the last
// error the runtime logged (its --log file, else its stderr), which is the
// text users need: runc's "exec: \"/no/such\": stat /no/such: no such file or
// directory" is what decides between exit codes 127 and 126.
type RuntimeError struct {
	Runtime string `json:"runtime"`        // base name of the binary, "runc" or "crun"
	Op      string `json:"op"`             // the runtime subcommand: create, start, exec, kill, ...
	ID      string `json:"id"`             // container id
	Msg     string `json:"msg"`            // the runtime's own message
	Hint    string `json:"hint,omitempty"` // what an operator can do about a known host problem
	Kind    error  `json:"-"`              // an errdefs kind, nil when the failure is unclassified
}

// Error reads as dockerd's for the runtime calls users see fail (create,
// start, exec): containerd's shim wraps the runtime's own message ("runc
// create failed: unable to start container process: exec: ...") in "OCI
// runtime <op> failed: ...: unknown", and a failed create gains the two
// layers dockerd 28 adds above the shim. Other calls keep the runtime, the
// subcommand and the container, which is what a log reader needs.
func (e *RuntimeError) Error() string {
	var msg string
	switch e.Op {
	case "create", "run":
		msg = fmt.Sprintf("failed to create task for container: failed to create shim task: OCI runtime %s failed: %s: unknown", e.Op, e.Msg)
	case "start", "exec":
		msg = fmt.Sprintf("OCI runtime %s failed: %s: unknown", e.Op, e.Msg)
	default:
		msg = fmt.Sprintf("%s %s %s: %s", e.Runtime, e.Op, e.ID, e.Msg)
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap exposes the errdefs kind to errors.Is.
func (e *RuntimeError) Unwrap() error { return e.Kind }

// Exit codes Docker's CLI uses when the container's command cannot be run.
const (
	ExitCodeNotFound      = 127
	ExitCodeCannotExecute = 126
)

// ExecFailureCode reports whether err says the container's process could not
// be executed, and with which exit code Docker reports that: 127 when the
// binary does not exist, 126 when it exists but cannot be executed.
func ExecFailureCode(err error) (int, bool) {
	var re *RuntimeError
	if !errors.As(err, &re) {
		return 0, false
	}
	switch execFailure(re.Msg) {
	case execNotFound:
		return ExitCodeNotFound, true
	case execDenied:
		return ExitCodeCannotExecute, true
	}
	return 0, false
}

// IsExecNotFound reports whether err says the container's binary is missing.
func IsExecNotFound(err error) bool {
	code, ok := ExecFailureCode(err)
	return ok && code == ExitCodeNotFound
}

// IsExecPermission reports whether err says the container's binary exists but
// may not be executed (no x bit, a directory, noexec mount).
func IsExecPermission(err error) bool {
	code, ok := ExecFailureCode(err)
	return ok && code == ExitCodeCannotExecute
}

type execClass int

const (
	execOK execClass = iota
	execNotFound
	execDenied
)

// execFailure recognises runc's `exec: "x": stat x: no such file or
// directory`, `exec: "x": executable file not found in $PATH`,
// `exec: "x": permission denied` and crun's "executable file `x` not found"
// and "exec `x`: Permission denied" forms.
func execFailure(msg string) execClass {
	m := strings.ToLower(msg)
	if !strings.Contains(m, "exec") {
		return execOK
	}
	switch {
	case strings.Contains(m, "executable file") && strings.Contains(m, "not found"),
		strings.Contains(m, "no such file or directory"):
		return execNotFound
	case strings.Contains(m, "permission denied"), strings.Contains(m, "is a directory"):
		return execDenied
	}
	return execOK
}

// classify fills Kind and Hint from the runtime's message.
func (e *RuntimeError) classify() {
	m := strings.ToLower(e.Msg)
	switch {
	case strings.Contains(m, "cgroups in hybrid mode not supported"):
		e.Kind = errdefs.ErrFailedPrecondition
		e.Hint = hybridHint()
	case strings.Contains(m, "rlim_memlock") && strings.Contains(m, "operation not permitted"):
		// No spec asks for it: crun raises its own limit to load the eBPF
		// device filter of a cgroup v2 container.
		e.Kind = errdefs.ErrFailedPrecondition
		e.Hint = "on cgroup v2 crun raises RLIMIT_MEMLOCK to load its eBPF device filter, which needs CAP_SYS_RESOURCE " +
			"or a hard limit (`ulimit -Hl`) high enough; use runc, which does not"
	case strings.Contains(m, "unknown version specified"):
		e.Kind = errdefs.ErrFailedPrecondition
		e.Hint = fmt.Sprintf("%s predates OCI runtime-spec %s, which berth writes: use runc or a newer %s", e.Runtime, specs.Version, e.Runtime)
	case strings.Contains(m, "rlimit") && strings.Contains(m, "operation not permitted"):
		e.Kind = errdefs.ErrFailedPrecondition
		e.Hint = "an rlimit in the spec is above this host's hard limit and the runtime lacks " +
			"CAP_SYS_RESOURCE to raise it: lower it to at most `ulimit -H` of the daemon, or give the daemon CAP_SYS_RESOURCE"
	case strings.Contains(m, "error opening file") && strings.Contains(m, "/status`: no such file"):
		// crun's way of saying the container does not exist.
		e.Kind = errdefs.ErrNotFound
	case (e.Op == "create" || e.Op == "start" || e.Op == "exec" || e.Op == "run") && execFailure(e.Msg) != execOK:
		e.Kind = errdefs.ErrInvalidArgument
	case strings.Contains(m, "does not exist"), strings.Contains(m, "container not found"),
		strings.Contains(m, "no such container"):
		e.Kind = errdefs.ErrNotFound
	case strings.Contains(m, "already exists"):
		e.Kind = errdefs.ErrAlreadyExists
	case strings.Contains(m, "not running"), strings.Contains(m, "not paused"),
		strings.Contains(m, "is paused"), strings.Contains(m, "is stopped"),
		strings.Contains(m, "cannot start a container that has stopped"), strings.Contains(m, "not stopped"):
		e.Kind = errdefs.ErrConflict
	}
}

// hybridHint explains crun's refusal of a cgroup v1 host whose cgroup2
// hierarchy still offers a controller, naming the controllers found.
func hybridHint() string {
	const unified = "/sys/fs/cgroup/unified"
	ctrl, _ := os.ReadFile(unified + "/cgroup.controllers")
	list := strings.TrimSpace(string(ctrl))
	if list == "" {
		list = "some"
	}
	return fmt.Sprintf("crun refuses cgroup v1 hybrid hosts whose cgroup2 hierarchy (%s) offers controllers; "+
		"this host offers %s there: use runc, or bind those controllers to v1 (e.g. `mkdir /sys/fs/cgroup/%s && "+
		"mount -t cgroup -o %s cgroup /sys/fs/cgroup/%s`), or boot with systemd.unified_cgroup_hierarchy=1",
		unified, list, firstWord(list), firstWord(list), firstWord(list))
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

// HybridCgroupProblem reports, without running a container, why crun would
// refuse this host: a cgroup v1 host whose cgroup2 mount offers controllers.
// It returns nil when the host is pure v1, pure v2, or hybrid with an empty
// cgroup2 hierarchy.
func HybridCgroupProblem() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	ctrl, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if err != nil || strings.TrimSpace(string(ctrl)) == "" {
		return nil
	}
	return fmt.Errorf("cgroup hierarchy: %w: %s", errdefs.ErrFailedPrecondition, hybridHint())
}
