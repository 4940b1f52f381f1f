package dockerfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagSpec lists the flags an instruction takes: true for booleans.
type flagSpec map[string]bool

var instructionFlags = map[string]flagSpec{
	"from":        {"platform": false},
	"run":         {"mount": false, "network": false, "security": false},
	"copy":        {"from": false, "chown": false, "chmod": false, "link": true},
	"add":         {"chown": false, "chmod": false, "link": true, "checksum": false, "keep-git-dir": true},
	"healthcheck": {"interval": false, "timeout": false, "start-period": false, "start-interval": false, "retries": false},
}

type parsers func(n *Node, pos Pos, flags map[string][]string) (Instruction, error)

// instructionNames are the instructions Docker knows, lower case.
var instructionNames = []string{"from", "run", "cmd", "entrypoint", "env", "arg", "label", "expose", "copy", "add",
	"workdir", "user", "volume", "shell", "healthcheck", "stopsignal", "onbuild", "maintainer"}

// parserFor is a switch rather than a map: ONBUILD's parser checks its
// trigger with NewInstruction, which a package-level map could not refer to.
func parserFor(cmd string) (parsers, bool) {
	switch cmd {
	case "from":
		return parseFrom, true
	case "run":
		return parseRun, true
	case "cmd":
		return parseCmd, true
	case "entrypoint":
		return parseEntrypoint, true
	case "env":
		return parseEnv, true
	case "arg":
		return parseArg, true
	case "label":
		return parseLabel, true
	case "expose":
		return parseExpose, true
	case "copy", "add":
		return parseCopy, true
	case "workdir":
		return parseWorkdir, true
	case "user":
		return parseUser, true
	case "volume":
		return parseVolume, true
	case "shell":
		return parseShell, true
	case "healthcheck":
		return parseHealthcheck, true
	case "stopsignal":
		return parseStopSignal, true
	case "onbuild":
		return parseOnBuild, true
	case "maintainer":
		return parseMaintainer, true
	}
	return nil, false
}

// NewInstruction checks and types one node.
func NewInstruction(n *Node) (Instruction, error) {
	parse, ok := parserFor(n.Cmd)
	if !ok {
		word := strings.ToUpper(n.Cmd)
		if s := suggest(n.Cmd); s != "" {
			return nil, fmt.Errorf("unknown instruction: %s (did you mean %s?)", word, strings.ToUpper(s))
		}
		return nil, fmt.Errorf("unknown instruction: %s", word)
	}
	pos := Pos{Keyword: strings.ToUpper(n.Cmd), Line: n.Line, Original: n.Original}
	flags, err := parseFlags(pos.Keyword, n.Flags, instructionFlags[n.Cmd])
	if err != nil {
		return nil, err
	}
	return parse(n, pos, flags)
}

// suggest names the instruction a misspelt word most likely meant.
func suggest(word string) string {
	best, bestDist := "", 3
	for _, name := range instructionNames {
		if d := editDistance(word, name); d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	if bestDist > 2 || bestDist >= len(word) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func parseFlags(keyword string, words []string, spec flagSpec) (map[string][]string, error) {
	out := map[string][]string{}
	for _, w := range words {
		name, value, hasValue := strings.Cut(w, "=")
		isBool, ok := spec[name]
		if !ok {
			return nil, fmt.Errorf("unknown flag: --%s for %s", name, keyword)
		}
		switch {
		case isBool && !hasValue:
			value = "true"
		case isBool:
			if _, err := strconv.ParseBool(value); err != nil {
				return nil, fmt.Errorf("expecting boolean value for flag --%s, not: %s", name, value)
			}
		case !hasValue:
			return nil, fmt.Errorf("missing a value on flag: --%s", name)
		}
		if name != "mount" && len(out[name]) > 0 {
			return nil, fmt.Errorf("duplicate flag specified: --%s", name)
		}
		out[name] = append(out[name], value)
	}
	return out, nil
}

func flagValue(flags map[string][]string, name string) string {
	if v := flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func boolFlag(flags map[string][]string, name string) bool {
	b, _ := strconv.ParseBool(flagValue(flags, name))
	return b
}

func parseFrom(n *Node, pos Pos, flags map[string][]string) (Instruction, error) {
	words := fields(n.Args)
	if len(words) != 1 && (len(words) != 3 || !strings.EqualFold(words[1], "as")) {
		return nil, errors.New("FROM requires either one or three arguments")
	}
	f := &From{Pos: pos, Image: words[0], Platform: flagValue(flags, "platform")}
	if len(words) == 3 {
		f.Name = strings.ToLower(words[2])
	}
	return f, nil
}

// command parses the exec (JSON) or shell form of RUN, CMD and ENTRYPOINT.
func command(n *Node, keyword string, heredocs bool) (Command, error) {
	if args, ok := parseJSONArray(n.Args); ok {
		return Command{Exec: true, Args: args}, nil
	}
	if strings.TrimSpace(n.Args) == "" && !(heredocs && len(n.Heredocs) > 0) {
		return Command{}, fmt.Errorf("%s requires at least one argument", keyword)
	}
	return Command{Script: n.Args}, nil
}

func parseRun(n *Node, pos Pos, flags map[string][]string) (Instruction, error) {
	c, err := command(n, pos.Keyword, true)
	if err != nil {
		return nil, err
	}
	return &Run{Pos: pos, Command: c, Heredocs: n.Heredocs, Mounts: flags["mount"],
		Network: flagValue(flags, "network"), Security: flagValue(flags, "security")}, nil
}

func parseCmd(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	c, err := command(n, pos.Keyword, false)
	return &Cmd{Pos: pos, Command: c}, err
}

func parseEntrypoint(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	c, err := command(n, pos.Keyword, false)
	return &Entrypoint{Pos: pos, Command: c}, err
}

func parseEnv(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	pairs, err := nameValues(n.Args, n.escape(), pos.Keyword, true)
	return &Env{Pos: pos, Pairs: pairs}, err
}

func parseLabel(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	pairs, err := nameValues(n.Args, n.escape(), pos.Keyword, false)
	return &Label{Pos: pos, Pairs: pairs}, err
}

// nameValues parses ENV and LABEL: key=value words (quotes kept for the
// build-time expansion), or the legacy "KEY value with spaces" form.
func nameValues(s string, esc rune, keyword string, needValue bool) ([]KeyValue, error) {
	words := rawWords(s, esc)
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", keyword)
	}
	if !strings.Contains(words[0], "=") {
		key := words[0]
		value := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), key))
		if value == "" && needValue {
			return nil, fmt.Errorf("%s must have two arguments", keyword)
		}
		return []KeyValue{{Key: key, Value: value}}, nil
	}
	var out []KeyValue
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("syntax error - can't find = in %q. Must be of the form: name=value", w)
		}
		if k == "" {
			return nil, fmt.Errorf("%s names can not be blank", keyword)
		}
		out = append(out, KeyValue{Key: k, Value: v})
	}
	return out, nil
}

// rawWords splits on blanks outside quotes and escapes, keeping quotes
// and escapes in the words.
func rawWords(s string, esc rune) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			escaped = false
			cur.WriteRune(c)
		case c == esc && quote != '\'':
			escaped = true
			cur.WriteRune(c)
		case quote != 0:
			if c == quote {
				quote = 0
			}
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			quote = c
			cur.WriteRune(c)
		case c == ' ' || c == '\t' || c == '\n':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

func parseArg(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	words := rawWords(n.Args, n.escape())
	if len(words) == 0 {
		return nil, errors.New("ARG requires at least one argument")
	}
	a := &Arg{Pos: pos}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if k == "" {
			return nil, errors.New("ARG names can not be blank")
		}
		a.Args = append(a.Args, ArgDef{Key: k, Default: v, HasDefault: ok})
	}
	return a, nil
}

func parseExpose(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	ports := fields(n.Args)
	if len(ports) == 0 {
		return nil, errors.New("EXPOSE requires at least one argument")
	}
	return &Expose{Pos: pos, Ports: ports}, nil
}

func parseCopy(n *Node, pos Pos, flags map[string][]string) (Instruction, error) {
	args, ok := parseJSONArray(n.Args)
	if !ok {
		args = fields(n.Args)
	}
	if len(args) < 2 {
		return nil, fmt.Errorf("%s requires at least two arguments, but only one was provided. Destination could not be determined.", pos.Keyword)
	}
	c := &Copy{Pos: pos, Add: n.Cmd == "add", Sources: args[:len(args)-1], Dest: args[len(args)-1], Heredocs: n.Heredocs,
		From: flagValue(flags, "from"), Chown: flagValue(flags, "chown"), Chmod: flagValue(flags, "chmod"), Checksum: flagValue(flags, "checksum"),
		Link: boolFlag(flags, "link"), KeepGitDir: boolFlag(flags, "keep-git-dir")}
	if c.Chmod != "" {
		if m, err := strconv.ParseUint(c.Chmod, 8, 32); err != nil || m > 0o7777 {
			return nil, fmt.Errorf("invalid chmod parameter: %s: must be an octal mode such as 0755", c.Chmod)
		}
	}
	return c, nil
}

func parseWorkdir(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	p := strings.TrimSpace(n.Args)
	if p == "" {
		return nil, errors.New("WORKDIR requires exactly one argument")
	}
	return &Workdir{Pos: pos, Path: p}, nil
}

func parseUser(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	u := strings.TrimSpace(n.Args)
	if u == "" {
		return nil, errors.New("USER requires exactly one argument")
	}
	return &User{Pos: pos, User: u}, nil
}

func parseVolume(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	paths, ok := parseJSONArray(n.Args)
	if !ok {
		paths = fields(n.Args)
	}
	if len(paths) == 0 {
		return nil, errors.New("VOLUME requires at least one argument")
	}
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			return nil, errors.New("VOLUME specified can not be an empty string")
		}
	}
	return &Volume{Pos: pos, Paths: paths}, nil
}

func parseShell(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	args, ok := parseJSONArray(n.Args)
	if !ok {
		return nil, errors.New("SHELL requires the arguments to be in JSON form")
	}
	if len(args) == 0 {
		return nil, errors.New("SHELL requires at least one argument")
	}
	return &Shell{Pos: pos, Args: args}, nil
}

func parseStopSignal(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	s := strings.TrimSpace(n.Args)
	if s == "" {
		return nil, errors.New("STOPSIGNAL requires exactly one argument")
	}
	return &StopSignal{Pos: pos, Signal: s}, nil
}

func parseMaintainer(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	s := strings.TrimSpace(n.Args)
	if s == "" {
		return nil, errors.New("MAINTAINER requires exactly one argument")
	}
	return &Maintainer{Pos: pos, Name: s}, nil
}

func parseOnBuild(n *Node, pos Pos, _ map[string][]string) (Instruction, error) {
	expr := strings.TrimSpace(n.Args)
	if expr == "" {
		return nil, errors.New("ONBUILD requires at least one argument")
	}
	word, _, _ := strings.Cut(expr, " ")
	switch strings.ToUpper(word) {
	case "ONBUILD":
		return nil, errors.New("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
	case "FROM", "MAINTAINER":
		return nil, fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(word))
	}
	// The trigger must itself be a valid instruction.
	f, err := Parse("", strings.NewReader(expr))
	if err != nil {
		return nil, err
	}
	for _, tn := range f.Nodes {
		if _, err := NewInstruction(tn); err != nil {
			return nil, err
		}
	}
	return &OnBuild{Pos: pos, Expression: expr}, nil
}

func parseHealthcheck(n *Node, pos Pos, flags map[string][]string) (Instruction, error) {
	words := fields(n.Args)
	if len(words) == 0 {
		return nil, errors.New("HEALTHCHECK requires at least one argument")
	}
	h := &Healthcheck{Pos: pos}
	switch typ := strings.ToUpper(words[0]); typ {
	case "NONE":
		if len(words) > 1 {
			return nil, errors.New("HEALTHCHECK NONE takes no arguments")
		}
		if len(flags) > 0 {
			return nil, errors.New("options cannot be specified with HEALTHCHECK NONE")
		}
		h.Test = []string{"NONE"}
		return h, nil
	case "CMD":
		rest := strings.TrimSpace(strings.TrimSpace(n.Args)[len(words[0]):])
		if args, ok := parseJSONArray(rest); ok {
			h.Test = append([]string{"CMD"}, args...)
		} else if rest == "" {
			return nil, errors.New("missing command after HEALTHCHECK CMD")
		} else {
			h.Test = []string{"CMD-SHELL", rest}
		}
	default:
		return nil, fmt.Errorf("unknown type %q in HEALTHCHECK (try CMD)", typ)
	}
	for name, dst := range map[string]*time.Duration{"interval": &h.Interval, "timeout": &h.Timeout,
		"start-period": &h.StartPeriod, "start-interval": &h.StartInterval} {
		v := flagValue(flags, name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q for --%s", v, name)
		}
		if d != 0 && d < time.Millisecond {
			return nil, fmt.Errorf("--%s cannot be less than 1ms", name)
		}
		*dst = d
	}
	if v := flagValue(flags, "retries"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("invalid retries %q: %w", v, err)
		}
		if r < 0 {
			return nil, fmt.Errorf("--retries cannot be negative (%d)", r)
		}
		h.Retries = r
	}
	return h, nil
}
