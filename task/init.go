package task

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// InitMain is `docker-init -- CMD ARGS...`, the init of containers run with
// --init: the berth binary bind-mounted at /sbin/docker-init. As PID 1 it
// starts the command, forwards every signal to it, reaps every orphan that
// the kernel reparents to it, and exits with the command's status (128+n
// when a signal killed it), so zombies never pile up and SIGTERM reaches a
// command that installed no handler of its own.
func InitMain(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: usage: docker-init -- COMMAND [ARG...]")
		return 2
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		if os.IsNotExist(err) || isNotFound(err) {
			return ExitCodeNotFound
		}
		return ExitCodeCannotExecute
	}
	child := cmd.Process.Pid
	for s := range sigs {
		if s == syscall.SIGCHLD {
			if code, done := reapAll(child); done {
				return code
			}
			continue
		}
		syscall.Kill(child, s.(syscall.Signal))
	}
	return 0
}

func isNotFound(err error) bool {
	e, ok := err.(*exec.Error)
	return ok && e.Err == exec.ErrNotFound
}

// reapAll collects every exited child; done is true once the command
// itself has exited, with its status.
func reapAll(child int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
