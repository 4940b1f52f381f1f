package dockerfile

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Instruction is one typed instruction of a stage.
type Instruction interface {
	Position() Pos
}

// Pos says where an instruction is and how it was written.
type Pos struct {
	Keyword  string // upper case: "RUN"
	Line     int
	Original string
}

// Position returns p; embedding Pos makes a type an Instruction.
func (p Pos) Position() Pos { return p }

// KeyValue is a raw ENV or LABEL pair; quotes and variables are still in
// Value, for the builder to process with the stage's variables.
type KeyValue struct {
	Key, Value string
}

// ArgDef is one name of an ARG, with its default when it has one.
type ArgDef struct {
	Key        string
	Default    string
	HasDefault bool
}

// Command is the argument list of RUN, CMD and ENTRYPOINT. The shell form
// is one Script string run by the stage's SHELL; the exec form is Args.
type Command struct {
	Exec   bool
	Args   []string
	Script string
}

// The instructions. Strings are raw: variables are expanded at build time.
type (
	From struct {
		Pos
		Image    string
		Name     string // the AS name, lower case
		Platform string
	}
	Run struct {
		Pos
		Command
		Heredocs []Heredoc
		Mounts   []string // raw --mount values
		Network  string
		Security string
	}
	Cmd struct {
		Pos
		Command
	}
	Entrypoint struct {
		Pos
		Command
	}
	Env struct {
		Pos
		Pairs []KeyValue
	}
	Arg struct {
		Pos
		Args []ArgDef
	}
	Label struct {
		Pos
		Pairs []KeyValue
	}
	Expose struct {
		Pos
		Ports []string
	}
	// Copy is COPY, or ADD when Add is set.
	Copy struct {
		Pos
		Add        bool
		Sources    []string
		Dest       string
		Heredocs   []Heredoc
		From       string
		Chown      string
		Chmod      string
		Checksum   string
		Link       bool
		KeepGitDir bool
	}
	Workdir struct {
		Pos
		Path string
	}
	User struct {
		Pos
		User string
	}
	Volume struct {
		Pos
		Paths []string
	}
	Shell struct {
		Pos
		Args []string
	}
	Healthcheck struct {
		Pos
		// Test is {"NONE"}, {"CMD", args...} or {"CMD-SHELL", script}.
		Test                                          []string
		Interval, Timeout, StartPeriod, StartInterval time.Duration
		Retries                                       int
	}
	StopSignal struct {
		Pos
		Signal string
	}
	OnBuild struct {
		Pos
		Expression string
	}
	Maintainer struct {
		Pos
		Name string
	}
)

// Stage is a FROM and the instructions up to the next FROM.
type Stage struct {
	Index int
	From  From
	Steps []Instruction
}

// Name is how other stages refer to this one: its AS name, or its index.
func (s *Stage) Name() string {
	if s.From.Name != "" {
		return s.From.Name
	}
	return strconv.Itoa(s.Index)
}

// Dockerfile is a parsed and checked Dockerfile.
type Dockerfile struct {
	File *File
	// MetaArgs are the ARGs before the first FROM: they may be used in
	// FROM lines, and inside a stage once declared again without a value.
	MetaArgs []*Arg
	Stages   []*Stage
}

// Steps counts the instructions of all stages, FROMs included: the M of
// the builder's "Step N/M".
func (d *Dockerfile) Steps() int {
	n := 0
	for _, s := range d.Stages {
		n += 1 + len(s.Steps)
	}
	return n
}

var reStageName = regexp.MustCompile(`^[a-z][a-z0-9-_.]*$`)

// Read parses and checks a Dockerfile.
func Read(name string, r io.Reader) (*Dockerfile, error) {
	f, err := Parse(name, r)
	if err != nil {
		return nil, err
	}
	return Build(f)
}

// Build types a parsed file's nodes and groups them into stages.
func Build(f *File) (*Dockerfile, error) {
	d := &Dockerfile{File: f}
	names := map[string]int{}
	for _, n := range f.Nodes {
		in, err := NewInstruction(n)
		if err != nil {
			return nil, &Error{File: f.Name, Line: n.Line, Msg: err.Error()}
		}
		switch in := in.(type) {
		case *From:
			if in.Name != "" {
				if !reStageName.MatchString(in.Name) {
					return nil, &Error{File: f.Name, Line: n.Line, Msg: fmt.Sprintf("invalid name for build stage: %q, name can't start with a number or contain symbols", in.Name)}
				}
				if first, ok := names[in.Name]; ok {
					return nil, &Error{File: f.Name, Line: n.Line, Msg: fmt.Sprintf("duplicate name %s: the stage of line %d has it already", in.Name, first)}
				}
				names[in.Name] = n.Line
			}
			d.Stages = append(d.Stages, &Stage{Index: len(d.Stages), From: *in})
		case *Arg:
			if len(d.Stages) == 0 {
				d.MetaArgs = append(d.MetaArgs, in)
				continue
			}
			last := d.Stages[len(d.Stages)-1]
			last.Steps = append(last.Steps, in)
		default:
			if len(d.Stages) == 0 {
				return nil, &Error{File: f.Name, Line: n.Line, Msg: fmt.Sprintf("no build stage in current context: %s must come after a FROM", strings.ToUpper(n.Cmd))}
			}
			last := d.Stages[len(d.Stages)-1]
			last.Steps = append(last.Steps, in)
		}
	}
	if len(d.Stages) == 0 {
		return nil, &Error{File: f.Name, Line: max(1, len(f.Nodes)), Msg: "file with no instructions"}
	}
	return d, nil
}

// Stage finds a stage by AS name (any case) or index.
func (d *Dockerfile) Stage(name string) (*Stage, bool) {
	lower := strings.ToLower(name)
	for _, s := range d.Stages {
		if s.From.Name != "" && s.From.Name == lower {
			return s, true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(d.Stages) {
		return d.Stages[i], true
	}
	return nil, false
}
