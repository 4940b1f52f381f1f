package apitest

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// program is a built-in stand-in for a binary in the image: it reads and
// writes through p and returns the exit status. The set is what the tests
// of clients need: echo, cat, sleep, true/false, env, hostname, id, and a
// small `sh -c` that runs those separated by ";" plus `exit N` and
// `echo ... >&2`.
type program func(p *procIO) int

// procIO is what a running program sees.
type procIO struct {
	run  *fakeRun
	args []string
	env  []string
	fs   *fakeFS
	// toStderr sends stdout to stderr: `>&2` in sh.
	toStderr bool
}

func (p *procIO) emit(b []byte) {
	if p.toStderr {
		p.run.write("stderr", b)
		return
	}
	p.run.write("stdout", b)
}

func (p *procIO) stdout(s string) { p.emit([]byte(s)) }
func (p *procIO) stderr(s string) { p.run.write("stderr", []byte(s)) }

// ignoredSignals are those whose default action is not to terminate.
var ignoredSignals = map[syscall.Signal]bool{
	syscall.SIGCHLD: true, syscall.SIGCONT: true, syscall.SIGURG: true, syscall.SIGWINCH: true,
}

// sleep blocks for d (negative: for ever) or until a terminating signal,
// whose 128+n status it returns.
func (p *procIO) sleep(d time.Duration) (int, bool) {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-timeout:
			return 0, false
		case sig := <-p.run.signals:
			if !ignoredSignals[sig] {
				return 128 + int(sig), true
			}
		}
	}
}

func programs() map[string]program {
	return map[string]program{
		"true":  func(*procIO) int { return 0 },
		"false": func(*procIO) int { return 1 },
		"echo": func(p *procIO) int {
			args, nl := p.args, "\n"
			if len(args) > 0 && args[0] == "-n" {
				args, nl = args[1:], ""
			}
			p.stdout(strings.Join(args, " ") + nl)
			return 0
		},
		"cat":      catProgram,
		"sleep":    sleepProgram,
		"top":      func(p *procIO) int { code, _ := p.sleep(-1); return code },
		"httpd":    func(p *procIO) int { code, _ := p.sleep(-1); return code },
		"env":      func(p *procIO) int { p.stdout(strings.Join(p.env, "\n") + "\n"); return 0 },
		"id":       func(p *procIO) int { p.stdout("uid=0(root) gid=0(root) groups=0(root),10(wheel)\n"); return 0 },
		"hostname": func(p *procIO) int { p.stdout(p.fs.hostname() + "\n"); return 0 },
		"sh":       shProgram,
	}
}

// lookupProgram resolves argv[0] the way runc's exec would fail on it:
// 127 for a missing binary, 126 for one that cannot be executed.
func lookupProgram(name string) (program, int, error) {
	prog, known := programs()[path.Base(name)]
	switch {
	case !strings.Contains(name, "/") && known:
		return prog, 0, nil
	case !strings.Contains(name, "/"):
		return nil, 127, fmt.Errorf("exec: %q: executable file not found in $PATH", name)
	case known && (path.Dir(name) == "/bin" || path.Dir(name) == "/usr/bin" || path.Dir(name) == "/sbin"):
		return prog, 0, nil
	case strings.HasPrefix(name, "/etc/"):
		return nil, 126, fmt.Errorf("exec: %q: permission denied", name)
	}
	return nil, 127, fmt.Errorf("exec: %q: stat %s: no such file or directory", name, name)
}

func catProgram(p *procIO) int {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := p.run.stdin.Read(buf)
			if n > 0 {
				p.emit(append([]byte(nil), buf[:n]...))
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return 0
		case sig := <-p.run.signals:
			if !ignoredSignals[sig] {
				p.run.stdin.Close()
				<-done
				return 128 + int(sig)
			}
		}
	}
}

func sleepProgram(p *procIO) int {
	if len(p.args) != 1 {
		p.stderr("sleep: usage: sleep N\n")
		return 1
	}
	d := time.Duration(-1)
	if p.args[0] != "infinity" {
		secs, err := strconv.ParseFloat(p.args[0], 64)
		if err != nil {
			p.stderr("sleep: invalid number '" + p.args[0] + "'\n")
			return 1
		}
		d = time.Duration(secs * float64(time.Second))
	}
	code, _ := p.sleep(d)
	return code
}

// shProgram runs `sh -c "cmd; cmd; ..."`.
func shProgram(p *procIO) int {
	if len(p.args) < 2 || p.args[0] != "-c" {
		code, _ := p.sleep(-1) // an interactive shell waiting for input
		return code
	}
	status := 0
	for _, line := range strings.Split(p.args[1], ";") {
		words, err := splitWords(line)
		if err != nil {
			p.stderr("sh: syntax error: " + err.Error() + "\n")
			return 2
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "exit" {
			if len(words) > 1 {
				status, _ = strconv.Atoi(words[1])
			}
			return status
		}
		toStderr := len(words) > 1 && words[len(words)-1] == ">&2"
		if toStderr {
			words = words[:len(words)-1]
		}
		prog, known := programs()[words[0]]
		if !known {
			p.stderr("sh: " + words[0] + ": not found\n")
			status = 127
			continue
		}
		status = prog(&procIO{run: p.run, args: words[1:], env: p.env, fs: p.fs, toStderr: toStderr})
		if status > 128 {
			return status // killed by a signal
		}
	}
	return status
}

// splitWords splits a command line on blanks, honouring '...' and "...".
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quoted string")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
