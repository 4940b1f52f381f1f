package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLifecycleCommands(t *testing.T) {
	t.Parallel()
	runContainerCases(t, []containerCase{
		{name: "stop", args: []string{"stop", "web", "nope"}, wantOut: "web\n", code: 1, wantErr: "Error response from daemon: No such container: nope\n"},
		{name: "stop stopped", args: []string{"stop", "-t", "1", "exited"}, wantOut: "exited\n"},
		{name: "kill", args: []string{"kill", "-s", "TERM", "web"}, wantOut: "web\n"},
		{name: "kill stopped", args: []string{"kill", "exited"}, code: 1,
			wantErr: "Error response from daemon: Cannot kill container: exited: Container " + exitedID + " is not running\n"},
		{name: "kill bad signal", args: []string{"kill", "-s", "NOPE", "web"}, code: 1, wantErr: "Error response from daemon: Invalid signal: NOPE\n"},
		{name: "pause twice", args: []string{"pause", "web", "web"}, wantOut: "web\n", code: 1,
			wantErr: "Error response from daemon: Container " + webID + " is already paused\n"},
		{name: "unpause", args: []string{"unpause", "web"}, code: 1, wantErr: "Error response from daemon: Container " + webID + " is not paused\n"},
		{name: "restart", args: []string{"restart", "exited", "created"}, wantOut: "exited\ncreated\n"},
		{name: "rm running", args: []string{"rm", "web"}, code: 1,
			wantErr: "Error response from daemon: You cannot remove a running container " + webID + ". Stop the container before attempting removal or force remove\n"},
		{name: "rm", args: []string{"rm", "-f", "web", "exited", "/created"}, wantOut: "web\nexited\n/created\n"},
		{name: "rm none", args: []string{"rm", "-v", "nope"}, code: 1, wantErr: "Error response from daemon: No such container: nope\n"},
		{name: "wait", args: []string{"wait", "exited", "nope", "created"}, code: 1, wantOut: "3\n0\n", wantErr: "Error response from daemon: No such container: nope\n"},
		{name: "rename", args: []string{"rename", "exited", "done"}},
		{name: "rename taken", args: []string{"rename", "exited", "web"}, code: 1,
			wantErr: "Error response from daemon: Conflict. The container name \"/web\" is already in use by container \"" + webID + "\". You have to remove (or rename) that container to be able to reuse that name.\nError: failed to rename container named exited\n"},
		{name: "start", args: []string{"start", "created", "nope", "web", "nope2"}, wantOut: "created\nweb\n", code: 1,
			wantErr: "Error response from daemon: No such container: nope\nError response from daemon: No such container: nope2\nError: failed to start containers: nope, nope2\n"},
		{name: "start attach many", args: []string{"start", "-a", "created", "exited"}, code: 1, wantErr: "you cannot start and attach multiple containers at once\n"},
		{name: "start attach", args: []string{"start", "-a", "exited"}, code: 3, wantOut: "out\n", wantErr: "err\n"},
		{name: "prune declined", args: []string{"container", "prune"}, stdin: "n\n",
			wantOut: "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "},
		{name: "prune", args: []string{"container", "prune"}, stdin: "y\n",
			wantOut: "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] Deleted Containers:\n" + exitedID + "\n" + createdID + "\n\nTotal reclaimed space: 0B\n"},
		{name: "prune forced filtered", args: []string{"container", "prune", "-f", "--filter", "label=nope"}, wantOut: "Total reclaimed space: 0B\n"},
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	runErr := func(msg string) string {
		return "berth: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: " +
			msg + ": unknown\n\nRun 'berth run --help' for more information\n"
	}
	runContainerCases(t, []containerCase{
		{name: "output", args: []string{"run", "busybox", "sh", "-c", "echo out; echo err >&2"}, wantOut: "out\n", wantErr: "err\n"},
		{name: "exit status", args: []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, code: 3},
		{name: "attach stdout only", args: []string{"run", "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2"}, wantOut: "out\n"},
		{name: "tty", args: []string{"run", "-t", "busybox", "echo", "hi"}, wantOut: "hi\r\n"},
		{name: "stdin", args: []string{"run", "-i", "busybox", "cat"}, stdin: "piped\ninput\n", wantOut: "piped\ninput\n"},
		{name: "stdin ignored without -i", args: []string{"run", "busybox", "cat"}, stdin: "piped\n"},
		{name: "tty stdin needs a terminal", args: []string{"run", "-it", "busybox", "cat"}, code: 1, wantErr: "the input device is not a TTY\n"},
		{name: "detach", args: []string{"run", "-d", "--name", "bg", "busybox", "top"}, wantOut: "548f478bd3a17cf1dbb6bebc9c5885a29b750611a9881af831125a4db2739fb5\n"},
		{name: "create", args: []string{"create", "--name", "c2", "busybox", "true"}, wantOut: "548f478bd3a17cf1dbb6bebc9c5885a29b750611a9881af831125a4db2739fb5\n"},
		{name: "not found", args: []string{"run", "busybox", "nope"}, code: 127, wantErr: runErr(`exec: "nope": executable file not found in $PATH`)},
		{name: "no such file", args: []string{"run", "busybox", "/no/such"}, code: 127, wantErr: runErr(`exec: "/no/such": stat /no/such: no such file or directory`)},
		{name: "not executable", args: []string{"run", "-d", "busybox", "/etc/passwd"}, code: 126, wantErr: runErr(`exec: "/etc/passwd": permission denied`)},
		{name: "name taken", args: []string{"run", "--name", "web", "busybox", "true"}, code: 125,
			wantErr: "berth: Error response from daemon: Conflict. The container name \"/web\" is already in use by container \"" + webID + "\". You have to remove (or rename) that container to be able to reuse that name.\n\nRun 'berth run --help' for more information\n"},
		{name: "no image", args: []string{"run", "--pull", "never", "nope", "true"}, code: 125,
			wantErr: "berth: Error response from daemon: No such image: nope\n\nRun 'berth run --help' for more information\n"},
		{name: "missing image is pulled", args: []string{"run", "nope", "true"}, code: 125,
			errHas: []string{"Unable to find image 'nope:latest' locally\n", "\n\nRun 'berth run --help' for more information\n"}},
		{name: "bad pull policy", args: []string{"run", "--pull", "sometimes", "busybox"}, code: 125,
			wantErr: "berth: invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\"\n\nRun 'berth run --help' for more information\n"},
		{name: "bad port", args: []string{"run", "-p", "abc", "busybox", "true"}, code: 125,
			wantErr: "berth: invalid containerPort: abc\n\nRun 'berth run --help' for more information\n"},
		{name: "bad memory", args: []string{"run", "-m", "12q", "busybox", "true"}, code: 125,
			wantErr: "invalid argument \"12q\" for \"-m, --memory\" flag: invalid suffix: 'q'\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
		{name: "bad env", args: []string{"run", "-e", "=x", "busybox", "true"}, code: 125,
			errHas: []string{"invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x\n"}},
		{name: "bad attach", args: []string{"run", "-a", "foo", "busybox"}, code: 125,
			errHas: []string{"invalid argument \"foo\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR\n"}},
		{name: "attach and detach", args: []string{"run", "-d", "-a", "stdout", "busybox", "true"}, code: 1,
			wantErr: "conflicting options: cannot specify both --attach and --detach\n"},
		{name: "no image argument", args: []string{"run"}, code: 1,
			wantErr: "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"},
		{name: "env file missing", args: []string{"run", "--env-file", "/nonexistent/env", "busybox", "true"}, code: 125,
			wantErr: "berth: open /nonexistent/env: no such file or directory\n\nRun 'berth run --help' for more information\n"},
	})
}

func TestRunRemove(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, false)
	out, errOut, code := run(t, host, nil, "run", "--rm", "--name", "gone", "busybox", "echo", "bye")
	if out != "bye\n" || errOut != "" || code != 0 {
		t.Fatalf("run --rm: %q %q %d", out, errOut, code)
	}
	out, _, _ = run(t, host, nil, "ps", "-aq")
	if out != "" {
		t.Errorf("after run --rm, ps -a lists %q", out)
	}
}

func TestExecCommand(t *testing.T) {
	t.Parallel()
	runContainerCases(t, []containerCase{
		{name: "status", args: []string{"exec", "web", "sh", "-c", "echo a; echo b >&2; exit 4"}, wantOut: "a\n", wantErr: "b\n", code: 4},
		{name: "env and flags", args: []string{"exec", "-e", "GREETING=hi", "-u", "root", "-w", "/tmp", "web", "env"},
			outHas: []string{"GREETING=hi\n", "HOSTNAME=201255379175\n"}},
		{name: "stdin", args: []string{"exec", "-i", "web", "cat"}, stdin: "through exec\n", wantOut: "through exec\n"},
		{name: "tty", args: []string{"exec", "-t", "web", "echo", "x"}, wantOut: "x\r\n"},
		{name: "not found", args: []string{"exec", "web", "nope"}, code: 127,
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\r\n"},
		{name: "detached", args: []string{"exec", "-d", "web", "sleep", "1"}},
		{name: "stopped", args: []string{"exec", "exited", "true"}, code: 1, wantErr: "Error response from daemon: Container " + exitedID + " is not running\n"},
		{name: "missing", args: []string{"exec", "nope", "true"}, code: 1, wantErr: "Error response from daemon: No such container: nope\n"},
		{name: "args", args: []string{"exec", "web"}, code: 1,
			wantErr: "berth: 'berth exec' requires at least 2 arguments\n\nUsage:  berth exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\nSee 'berth exec --help' for more information\n"},
	})
}

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	stamp := frozen.UTC().Format("2006-01-02T15:04:05.000000000Z")
	runContainerCases(t, []containerCase{
		{name: "both streams", args: []string{"logs", "exited"}, wantOut: "out\n", wantErr: "err\n"},
		{name: "tail", args: []string{"logs", "--tail", "1", "exited"}, wantErr: "err\n"},
		{name: "timestamps", args: []string{"logs", "-t", "exited"}, wantOut: stamp + " out\n", wantErr: stamp + " err\n"},
		{name: "since excludes", args: []string{"logs", "--since", "10m", "exited"}},
		{name: "since includes", args: []string{"logs", "--since", frozen.Add(-time.Minute).Format(time.RFC3339), "exited"}, wantOut: "out\n", wantErr: "err\n"},
		{name: "until unix", args: []string{"logs", "--until", "1000", "exited"}},
		{name: "bad since", args: []string{"logs", "--since", "yesterday", "exited"}, code: 1, errHas: []string{`invalid value for "since"`}},
		{name: "missing", args: []string{"logs", "nope"}, code: 1, wantErr: "Error response from daemon: No such container: nope\n"},
	})
}

func TestInspectContainers(t *testing.T) {
	t.Parallel()
	runContainerCases(t, []containerCase{
		{name: "generic", args: []string{"inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.ExitCode}}", "web", "exited"}, wantOut: "/web running 0\n/exited exited 3\n"},
		{name: "image falls back", args: []string{"inspect", "-f", "{{.Os}}", "busybox"}, wantOut: "linux\n"},
		{name: "neither", args: []string{"inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error: No such object: nope\n"},
		{name: "type container", args: []string{"inspect", "--type", "container", "-f", "{{.Id}}", "busybox"}, code: 1,
			wantOut: "\n", wantErr: "Error response from daemon: No such container: busybox\n"},
		{name: "container inspect", args: []string{"container", "inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.Config.Hostname}}", "web"}, wantOut: "172.17.0.2 201255379175\n"},
		{name: "container inspect json", args: []string{"container", "inspect", "--format", "json", "created"}, outHas: []string{`[{"Id":"` + createdID + `","Created":`}},
		{name: "container inspect size", args: []string{"container", "inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "web"}, wantOut: "0 2050000\n"},
		{name: "container inspect missing", args: []string{"container", "inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error response from daemon: No such container: nope\n"},
	})
}

func TestContainerInfoCommands(t *testing.T) {
	t.Parallel()
	runContainerCases(t, []containerCase{
		{name: "top", args: []string{"top", "web"}, outHas: []string{"UID                 PID                 PPID                C  ", "root                4001                4000   "}},
		{name: "top stopped", args: []string{"top", "exited"}, code: 1, wantErr: "Error response from daemon: Container " + exitedID + " is not running\n"},
		{name: "diff", args: []string{"diff", "web"}},
		{name: "port", args: []string{"port", "web"}, wantOut: "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n"},
		{name: "port one", args: []string{"port", "web", "80"}, wantOut: "0.0.0.0:8080\n[::]:8080\n"},
		{name: "port unpublished", args: []string{"port", "web", "81/udp"}, code: 1, wantErr: "Error: No public port '81/udp' published for web\n"},
		{name: "stats", args: []string{"stats", "--no-stream", "web"}, wantOut: "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O    PIDS\n" +
			"201255379175   web       0.00%     7MiB / 4GiB         0.17%     1.3kB / 0B   4.1kB / 0B   1\n"},
		{name: "stats json", args: []string{"stats", "--no-stream", "--format", "json", "web"},
			wantOut: `{"BlockIO":"4.1kB / 0B","CPUPerc":"0.00%","Container":"web","ID":"201255379175","MemPerc":"0.17%","MemUsage":"7MiB / 4GiB","Name":"web","NetIO":"1.3kB / 0B","PIDs":"1"}` + "\n"},
		{name: "stats missing", args: []string{"stats", "--no-stream", "nope"}, code: 1,
			wantOut: "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n", wantErr: "Error response from daemon: No such container: nope\n"},
	})
}

func TestEventsCommand(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, true)
	// Durations count whole seconds; the seed's events happened in this
	// one, so until is given to the nanosecond.
	until := time.Now().Format(time.RFC3339Nano)
	out, errOut, code := run(t, host, nil, "events", "--since", "1h", "--until", until, "--filter", "container=exited")
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\S+ container (create|start|die) ` + exitedID + ` \(((exitCode=3|image=busybox|name=exited)(, )?)+\)$`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || errOut != "" || code != 0 {
		t.Fatalf("events: %q %q %d", out, errOut, code)
	}
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("event line %q", l)
		}
	}
	out, _, code = run(t, host, nil, "events", "--since", "1h", "--until", until, "--format", "{{.Action}} {{.Actor.Attributes.name}}", "-f", "event=start")
	if out != "start web\nstart exited\n" || code != 0 {
		t.Errorf("events --format: %q %d", out, code)
	}
	_, errOut, code = run(t, host, nil, "events", "-f", "colour=red", "--until", "0s")
	if code != 1 || errOut != "Error response from daemon: invalid filter 'colour'\n" {
		t.Errorf("events with a bad filter: %q %d", errOut, code)
	}
}
