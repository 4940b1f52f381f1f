package build

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"berth/build/dockerfile"
	"berth/errdefs"
	"berth/image"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// meta runs an instruction that changes only the config. Its history
// line is Docker's: "<shell> #(nop)  <comment>".
func (s *stage) meta(ctx context.Context, in dockerfile.Instruction) error {
	cfg := cloneConfig(s.cfg)
	comment, err := s.apply(cfg, in)
	if err != nil {
		return err
	}
	return s.commitConfig(ctx, cfg, append(s.shellOf(cfg), "#(nop) ", comment))
}

// shellOf is the SHELL a config sets, /bin/sh -c by default.
func (s *stage) shellOf(cfg *image.Config) []string {
	if len(cfg.Config.Shell) > 0 {
		return append([]string{}, cfg.Config.Shell...)
	}
	return []string{"/bin/sh", "-c"}
}

// commitConfig makes an image with cfg and no new layer. nop is the
// command Docker records for the step ({shell..., "#(nop) ", comment});
// joined, it is the history line.
func (s *stage) commitConfig(ctx context.Context, cfg *image.Config, nop []string) error {
	createdBy := strings.Join(nop, " ")
	key := stepKey{Parent: s.id, CreatedBy: createdBy, Author: cfg.Author, Config: cfg.Config}
	return s.commit(ctx, key, func(ctx context.Context) (digest.Digest, error) {
		c := s.child(cfg, createdBy, true)
		c.ContainerConfig = containerConfig(cfg.Config, nop)
		return s.j.b.storeConfig(ctx, s.id, c, "")
	})
}

// apply changes cfg as the instruction says and returns the comment of
// its history line.
func (s *stage) apply(cfg *image.Config, in dockerfile.Instruction) (string, error) {
	c := &cfg.Config
	switch in := in.(type) {
	case *dockerfile.Env:
		return s.applyEnv(c, in)
	case *dockerfile.Label:
		return s.applyLabel(c, in)
	case *dockerfile.Cmd:
		c.Cmd = s.argv(cfg, in.Command)
		s.cmdSet = true
		return fmt.Sprintf("CMD %q", c.Cmd), nil
	case *dockerfile.Entrypoint:
		c.Entrypoint = s.argv(cfg, in.Command)
		if !s.cmdSet {
			c.Cmd = nil
		}
		return fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint), nil
	case *dockerfile.Expose:
		return s.applyExpose(c, in)
	case *dockerfile.User:
		u, err := s.word(in.User)
		c.User = u
		return "USER " + u, err
	case *dockerfile.Volume:
		return s.applyVolume(c, in)
	case *dockerfile.Shell:
		c.Shell = append([]string{}, in.Args...)
		return fmt.Sprintf("SHELL %v", in.Args), nil
	case *dockerfile.Healthcheck:
		c.Healthcheck = &dockerspec.HealthcheckConfig{Test: in.Test, Interval: in.Interval, Timeout: in.Timeout,
			StartPeriod: in.StartPeriod, StartInterval: in.StartInterval, Retries: in.Retries}
		h := c.Healthcheck
		// Docker's line is the %q of its struct; vet rightly frowns upon
		// that, so it is spelt out.
		return fmt.Sprintf("HEALTHCHECK &{%q %q %q %q %q %q}", h.Test, h.Interval.String(), h.Timeout.String(),
			h.StartPeriod.String(), h.StartInterval.String(), rune(h.Retries)), nil
	case *dockerfile.StopSignal:
		sig, err := s.word(in.Signal)
		if err != nil {
			return "", err
		}
		if err := checkSignal(sig); err != nil {
			return "", err
		}
		c.StopSignal = sig
		return "STOPSIGNAL " + sig, nil
	case *dockerfile.OnBuild:
		c.OnBuild = append(c.OnBuild, in.Expression)
		return "ONBUILD " + in.Expression, nil
	case *dockerfile.Maintainer:
		cfg.Author = in.Name
		return "MAINTAINER " + in.Name, nil
	}
	return "", fmt.Errorf("%s is not a config instruction: %w", in.Position().Keyword, errdefs.ErrInvalidArgument)
}

// argv is a command's exec form, or the stage's shell and the script.
func (s *stage) argv(cfg *image.Config, c dockerfile.Command) []string {
	if c.Exec {
		return append([]string{}, c.Args...)
	}
	return append(s.shellOf(cfg), c.Script)
}

func (s *stage) pairs(kvs []dockerfile.KeyValue) ([][2]string, error) {
	var out [][2]string
	for _, kv := range kvs {
		k, err := s.word(kv.Key)
		if err != nil {
			return nil, err
		}
		v, err := s.word(kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// applyEnv expands every pair with the values from before the line, as
// Docker does: `ENV A=1 B=$A` sees the old A.
func (s *stage) applyEnv(c *dockerspec.DockerOCIImageConfig, in *dockerfile.Env) (string, error) {
	pairs, err := s.pairs(in.Pairs)
	if err != nil {
		return "", err
	}
	comment := "ENV"
	for _, kv := range pairs {
		entry := kv[0] + "=" + kv[1]
		comment += " " + entry
		replaced := false
		for i, e := range c.Env {
			if k, _, _ := strings.Cut(e, "="); k == kv[0] {
				c.Env[i], replaced = entry, true
			}
		}
		if !replaced {
			c.Env = append(c.Env, entry)
		}
	}
	return comment, nil
}

func (s *stage) applyLabel(c *dockerspec.DockerOCIImageConfig, in *dockerfile.Label) (string, error) {
	pairs, err := s.pairs(in.Pairs)
	if err != nil {
		return "", err
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	comment := "LABEL"
	for _, kv := range pairs {
		c.Labels[kv[0]] = kv[1]
		comment += " " + kv[0] + "=" + kv[1]
	}
	return comment, nil
}

func (s *stage) applyExpose(c *dockerspec.DockerOCIImageConfig, in *dockerfile.Expose) (string, error) {
	var ports []string
	for _, p := range in.Ports {
		words, err := s.j.lex.Words(p, s.lookup)
		if err != nil {
			return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
		}
		ports = append(ports, words...)
	}
	if c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		expanded, err := exposedPorts(p)
		if err != nil {
			return "", err
		}
		for _, e := range expanded {
			c.ExposedPorts[e] = struct{}{}
		}
	}
	return "EXPOSE " + strings.Join(ports, " "), nil
}

// exposedPorts parses port[-port][/proto] into "port/proto" keys.
func exposedPorts(spec string) ([]string, error) {
	ports, proto, ok := strings.Cut(spec, "/")
	if !ok || proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	start, err1 := strconv.Atoi(lo)
	end := start
	var err2 error
	if isRange {
		end, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || start < 1 || end > 65535 || end < start {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid containerPort: %s", ports)
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, strconv.Itoa(p)+"/"+proto)
	}
	return out, nil
}

func (s *stage) applyVolume(c *dockerspec.DockerOCIImageConfig, in *dockerfile.Volume) (string, error) {
	var paths []string
	for _, p := range in.Paths {
		v, err := s.word(p)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(v) == "" {
			return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "VOLUME specified can not be an empty string")
		}
		paths = append(paths, v)
	}
	if c.Volumes == nil {
		c.Volumes = map[string]struct{}{}
	}
	for _, p := range paths {
		c.Volumes[p] = struct{}{}
	}
	return fmt.Sprintf("VOLUME %v", paths), nil
}

// checkSignal accepts what Docker's STOPSIGNAL does: a number or a name,
// with or without SIG.
func checkSignal(sig string) error {
	if n, err := strconv.Atoi(sig); err == nil {
		if n < 1 || n > 64 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", sig)
		}
		return nil
	}
	name := "SIG" + strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") || unix.SignalNum(name) != 0 {
		return nil
	}
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", sig)
}

// arg declares ARGs: a --build-arg wins, then the default, then the
// value of a global ARG of the same name.
func (s *stage) arg(ctx context.Context, in *dockerfile.Arg) error {
	var words []string
	for _, def := range in.Args {
		v := argValue{}
		if bv, ok := s.j.buildArg(def.Key); ok {
			v = argValue{bv, true}
		} else if def.HasDefault {
			dv, err := s.word(def.Default)
			if err != nil {
				return err
			}
			v = argValue{dv, true}
		} else if mv, ok := s.j.metaLookup(def.Key); ok {
			v = argValue{mv, true}
		}
		s.args[def.Key] = v
		w := def.Key
		if def.HasDefault {
			w += "=" + def.Default
		}
		words = append(words, w)
	}
	return s.commitConfig(ctx, cloneConfig(s.cfg), append(s.shell(), "#(nop) ", "ARG "+strings.Join(words, " ")))
}

func cloneConfig(c *image.Config) *image.Config {
	var out image.Config
	b, _ := json.Marshal(c)
	json.Unmarshal(b, &out)
	return &out
}

func cloneImageConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	b, _ := json.Marshal(c)
	json.Unmarshal(b, &out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
