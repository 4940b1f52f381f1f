package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"berth/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// changeCommands are the Dockerfile instructions that `import --change` and
// `commit --change` accept, as Docker's.
var changeCommands = map[string]func(*dockerspec.DockerOCIImageConfig, string) error{
	"CMD":         func(c *dockerspec.DockerOCIImageConfig, a string) error { c.Cmd = commandForm(a); return nil },
	"ENTRYPOINT":  func(c *dockerspec.DockerOCIImageConfig, a string) error { c.Entrypoint = commandForm(a); return nil },
	"ENV":         applyEnv,
	"EXPOSE":      applyExpose,
	"LABEL":       applyLabel,
	"USER":        func(c *dockerspec.DockerOCIImageConfig, a string) error { c.User = a; return nil },
	"WORKDIR":     applyWorkdir,
	"VOLUME":      applyVolume,
	"STOPSIGNAL":  func(c *dockerspec.DockerOCIImageConfig, a string) error { c.StopSignal = a; return nil },
	"ONBUILD":     func(c *dockerspec.DockerOCIImageConfig, a string) error { c.OnBuild = append(c.OnBuild, a); return nil },
	"HEALTHCHECK": applyHealthcheck,
}

// knownInstructions are valid Dockerfile instructions that are not allowed
// as changes: they get Docker's "is not a valid change command" error.
var knownInstructions = map[string]bool{
	"FROM": true, "RUN": true, "COPY": true, "ADD": true, "ARG": true, "SHELL": true, "MAINTAINER": true,
}

// ApplyChanges applies Dockerfile instructions to cfg. Errors name the line.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, line := range changes {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		word, args, _ := strings.Cut(line, " ")
		if word2, args2, ok := strings.Cut(line, "\t"); ok && len(word2) < len(word) {
			word, args = word2, args2
		}
		word = strings.ToUpper(word)
		args = strings.TrimSpace(args)
		apply, ok := changeCommands[word]
		if !ok {
			if knownInstructions[word] {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "%s is not a valid change command", word)
			}
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: unknown instruction: %s", word)
		}
		if args == "" && word != "CMD" && word != "ENTRYPOINT" {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: %s requires at least one argument", word)
		}
		if err := apply(cfg, args); err != nil {
			return err
		}
	}
	return nil
}

// commandForm parses the exec (JSON array) or shell form of CMD and
// ENTRYPOINT.
func commandForm(a string) []string {
	var exec []string
	if strings.HasPrefix(a, "[") && json.Unmarshal([]byte(a), &exec) == nil {
		return exec
	}
	if a == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", a}
}

// keyValues parses ENV and LABEL arguments: k=v pairs with quotes and
// backslash escapes, or the legacy "KEY value with spaces" form.
func keyValues(word, a string) ([][2]string, error) {
	words, err := splitWords(a)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		key, val, _ := strings.Cut(a, " ")
		if strings.TrimSpace(val) == "" && word == "ENV" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: ENV must have two arguments")
		}
		return [][2]string{{key, strings.TrimSpace(val)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: %s names can not be blank", word)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on unquoted spaces, removing quotes and escapes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case c == '\\' && i+1 < len(s) && quote != '\'':
			i++
			cur.WriteByte(s[i])
			inWord = true
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, inWord = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: unmatched quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func applyEnv(c *dockerspec.DockerOCIImageConfig, a string) error {
	kvs, err := keyValues("ENV", a)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		entry := kv[0] + "=" + kv[1]
		replaced := false
		for i, e := range c.Env {
			if strings.HasPrefix(e, kv[0]+"=") {
				c.Env[i], replaced = entry, true
			}
		}
		if !replaced {
			c.Env = append(c.Env, entry)
		}
	}
	return nil
}

func applyLabel(c *dockerspec.DockerOCIImageConfig, a string) error {
	kvs, err := keyValues("LABEL", a)
	if err != nil {
		return err
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for _, kv := range kvs {
		c.Labels[kv[0]] = kv[1]
	}
	return nil
}

func applyExpose(c *dockerspec.DockerOCIImageConfig, a string) error {
	if c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range strings.Fields(a) {
		port, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if !validPort(port) || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid containerPort: %s", p)
		}
		c.ExposedPorts[port+"/"+proto] = struct{}{}
	}
	return nil
}

func validPort(s string) bool {
	lo, hi, isRange := strings.Cut(s, "-")
	ok := func(p string) bool {
		var n int
		_, err := fmt.Sscanf(p, "%d", &n)
		return err == nil && fmt.Sprint(n) == p && n >= 1 && n <= 65535
	}
	return ok(lo) && (!isRange || ok(hi))
}

func applyWorkdir(c *dockerspec.DockerOCIImageConfig, a string) error {
	if !strings.HasPrefix(a, "/") {
		a = strings.TrimSuffix(c.WorkingDir, "/") + "/" + a
	}
	c.WorkingDir = a
	return nil
}

func applyVolume(c *dockerspec.DockerOCIImageConfig, a string) error {
	var vols []string
	if !strings.HasPrefix(a, "[") || json.Unmarshal([]byte(a), &vols) != nil {
		vols = strings.Fields(a)
	}
	if c.Volumes == nil {
		c.Volumes = map[string]struct{}{}
	}
	for _, v := range vols {
		if v == "" {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "VOLUME specified can not be an empty string")
		}
		c.Volumes[v] = struct{}{}
	}
	return nil
}

// applyHealthcheck parses `HEALTHCHECK [--interval=..] CMD ...` and
// `HEALTHCHECK NONE`.
func applyHealthcheck(c *dockerspec.DockerOCIImageConfig, a string) error {
	hc := &dockerspec.HealthcheckConfig{}
	fields := strings.Fields(a)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(fields[0], "--"), "=")
		if err := setHealthFlag(hc, k, v); err != nil {
			return err
		}
		a = strings.TrimSpace(strings.TrimPrefix(a, fields[0]))
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: Missing command after HEALTHCHECK")
	}
	switch strings.ToUpper(fields[0]) {
	case "NONE":
		hc.Test = []string{"NONE"}
	case "CMD":
		rest := strings.TrimSpace(a[len(fields[0]):])
		var exec []string
		if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &exec) == nil {
			hc.Test = append([]string{"CMD"}, exec...)
		} else {
			hc.Test = []string{"CMD-SHELL", rest}
		}
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: Unknown type %q in HEALTHCHECK (try CMD)", fields[0])
	}
	c.Healthcheck = hc
	return nil
}

func setHealthFlag(hc *dockerspec.HealthcheckConfig, k, v string) error {
	if k == "retries" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: invalid retries %q", v)
		}
		hc.Retries = n
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: invalid duration %q for --%s", v, k)
	}
	switch k {
	case "interval":
		hc.Interval = d
	case "timeout":
		hc.Timeout = d
	case "start-period":
		hc.StartPeriod = d
	case "start-interval":
		hc.StartInterval = d
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "dockerfile parse error line 1: unknown flag: --%s", k)
	}
	return nil
}

// sortedKeys is used where a deterministic order is needed.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
