// Package task runs containers through an OCI runtime CLI (runc or crun,
// exec'd, never linked) with one shim process per container.
//
// Runtime drives the CLI both runtimes share: create, start, kill, delete,
// state, exec, pause, resume, list, ps. Each daemon gives it its own --root
// (e.g. <exec-root>/runtime/runc) so daemons on one host never see each
// other's containers. Failures come back as *RuntimeError carrying the
// runtime's last logged error (--log <tmp> --log-format json), classified
// into errdefs kinds; ExecFailureCode maps "no such binary" to 127 and
// "cannot execute" to 126 as Docker's CLI does. The two known host
// problems, crun on a cgroup v1 hybrid host whose cgroup2 hierarchy offers
// controllers and rlimits above the host's hard limits without
// CAP_SYS_RESOURCE, are ErrFailedPrecondition with a Hint saying what to do;
// HybridCgroupProblem and CheckRlimits find them before a runtime is run.
//
// The shim (`berth shim`, ShimMain) is started by the daemon through
// StartShim. It puts itself in its own session, becomes a child subreaper
// so the container's init (and exec'd processes) are reparented to it,
// creates the container with itself holding the other end of the stdio
// (pipes, or the pty master received over --console-socket), writes the
// output to a Docker json-file log, reaps the init and records its exit,
// and serves the protocol documented in protocol.go until a delete. It
// outlives the daemon; Connect finds it again after a daemon restart.
//
// The lifecycle, from the daemon's side:
//
//	s, err := StartShim(ctx, opts) // container created; ExecFailureCode(err) for 126/127
//	a, err := s.Attach(ctx, ...)   // optional, before Start so no output is missed
//	err = s.Start(ctx)
//	st, err := s.Wait(ctx)         // st.Code: exit code or 128+signal
//	st, err = s.Delete(ctx, false) // the shim exits
//
// StartShim is LaunchShim then Create: a caller that still has a bundle to
// write launches the shim first (its process start-up, several
// milliseconds for a binary this size, then overlaps that work) and calls
// Create once the bundle is complete, or Abort; until then the shim, told
// by --go-fd, touches nothing.
//
// A shim's state directory (chosen by the daemon, e.g.
// /run/berth/containers/<id>; its path must leave room for a unix socket
// name, under 108 bytes):
//
//	shim.sock      the protocol socket (removed when the shim exits)
//	shim.log       the shim's own stderr (slog text)
//	init.pid       the init's host pid, written by the runtime
//	exit.json      {"pid","exitCode","signal","finishedAt"}: written once
//	               the init exited and its output drained, by temp file
//	               and rename (no fsync: runtime state, moot after a host
//	               crash); ReadExit reads it
//	console.sock   transient: receives the init's pty master
//	c<n>.sock, exec-<n>.pid   transient, per exec
//
// The json-file log (LogConfig.Path, normally <container dir>/<id>-json.log)
// holds one {"log","stream","time"} object per line exactly as Docker
// writes it, rotated to <path>.1 … <path>.<MaxFiles-1> at MaxSize.
package task
