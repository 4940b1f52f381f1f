package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
)

// containerSpec is what create sends.
type containerSpec struct {
	config     *container.Config
	host       *container.HostConfig
	networking *network.NetworkingConfig
	platform   *ocispec.Platform
}

// build turns the flags and the IMAGE [COMMAND] [ARG...] arguments into the
// create request, checking what docker checks on the client side.
func (o *createOptions) build(f *pflag.FlagSet, args []string) (*containerSpec, error) {
	cfg := &container.Config{Image: args[0], Cmd: args[1:], Tty: o.tty, OpenStdin: o.stdin,
		User: o.user, WorkingDir: o.workdir, Hostname: o.hostname, Domainname: o.domainname,
		StopSignal: o.stopSignal, Labels: map[string]string{}}
	if err := o.attachStreams(cfg); err != nil {
		return nil, err
	}
	if f.Changed("entrypoint") {
		cfg.Entrypoint = []string{o.entrypoint}
	}
	if f.Changed("stop-timeout") {
		cfg.StopTimeout = &o.stopTimeout
	}
	var err error
	if cfg.Env, err = o.environment(); err != nil {
		return nil, err
	}
	if err := o.addLabels(cfg.Labels); err != nil {
		return nil, err
	}
	if cfg.Healthcheck, err = o.healthcheck(); err != nil {
		return nil, err
	}
	host, err := o.hostConfig(f)
	if err != nil {
		return nil, err
	}
	if cfg.ExposedPorts, host.PortBindings, err = parsePorts(o.expose, o.publish); err != nil {
		return nil, err
	}
	if cfg.Volumes, host.Binds, err = parseVolumes(o.volumes); err != nil {
		return nil, err
	}
	if cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	nc, err := o.networking()
	if err != nil {
		return nil, err
	}
	spec := &containerSpec{config: cfg, host: host, networking: nc}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return nil, err
		}
		spec.platform = &p
	}
	return spec, nil
}

// attachStreams sets which streams a foreground run attaches: -a chooses,
// else stdout and stderr, plus stdin with -i.
func (o *createOptions) attachStreams(cfg *container.Config) error {
	if len(o.attach) == 0 {
		cfg.AttachStdout, cfg.AttachStderr = true, true
	}
	// -i attaches stdin whatever -a says.
	cfg.AttachStdin = o.stdin
	for _, s := range o.attach {
		switch s {
		case "stdin":
			cfg.AttachStdin = true
		case "stdout":
			cfg.AttachStdout = true
		case "stderr":
			cfg.AttachStderr = true
		}
	}
	// Stdin closes with the attached client's input, as `run -i` expects.
	cfg.StdinOnce = cfg.AttachStdin
	return nil
}

// environment reads the env files first, then -e, as docker does.
func (o *createOptions) environment() ([]string, error) {
	var env []string
	for _, file := range o.envFile {
		lines, err := readKeyValueFile(file, validateEnv)
		if err != nil {
			return nil, err
		}
		env = append(env, lines...)
	}
	return append(env, o.env...), nil
}

// readKeyValueFile reads an env or label file: one entry a line, blank
// lines and "#" comments skipped.
func readKeyValueFile(name string, check func(string) (string, error)) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		v, err := check(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, n, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

func (o *createOptions) addLabels(labels map[string]string) error {
	var all []string
	for _, file := range o.labelFiles {
		lines, err := readKeyValueFile(file, func(s string) (string, error) { return s, nil })
		if err != nil {
			return err
		}
		all = append(all, lines...)
	}
	for _, l := range append(all, o.labels...) {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	return nil
}

func (o *createOptions) healthcheck() (*container.HealthConfig, error) {
	set := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 || o.healthStartPeriod != 0 || o.healthStartInterval != 0 || o.healthRetries != 0
	if o.noHealthcheck {
		if set {
			return nil, fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for name, d := range map[string]int64{"--health-interval": int64(o.healthInterval), "--health-timeout": int64(o.healthTimeout), "--health-start-period": int64(o.healthStartPeriod)} {
		if d < 0 {
			return nil, fmt.Errorf("%s cannot be negative", name)
		}
	}
	if o.healthRetries < 0 {
		return nil, fmt.Errorf("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStartPeriod,
		StartInterval: o.healthStartInterval, Retries: o.healthRetries}
	if o.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	return hc, nil
}

// parseRestart reads no, always, unless-stopped and on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	if hasCount {
		if name != string(container.RestartPolicyOnFailure) {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// parseVolumes splits -v into anonymous volumes ("/data") and binds
// ("src:dst[:opts]"), which the daemon parses further.
func parseVolumes(vols []string) (map[string]struct{}, []string, error) {
	var anon map[string]struct{}
	var binds []string
	for _, v := range vols {
		parts := strings.Split(v, ":")
		switch {
		case v == "":
			return nil, nil, fmt.Errorf("invalid empty volume spec")
		case len(parts) == 1:
			if !path.IsAbs(v) {
				return nil, nil, fmt.Errorf("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", v, v)
			}
			if anon == nil {
				anon = map[string]struct{}{}
			}
			anon[v] = struct{}{}
		case len(parts) > 3:
			return nil, nil, fmt.Errorf("invalid volume specification: '%s'", v)
		default:
			binds = append(binds, absoluteBindSource(v))
		}
	}
	return anon, binds, nil
}

// parseSecurityOpts reads a seccomp profile path into the option's value,
// as the daemon expects the profile itself.
func parseSecurityOpts(opts []string) ([]string, error) {
	var out []string
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if o == "no-new-privileges" {
			out = append(out, o)
			continue
		}
		if !ok {
			return nil, fmt.Errorf("Invalid --security-opt: %q", o)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + compact.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// keyValues turns "k=v" flags into a map; a bare "k" maps to "".
func keyValues(flag string, vals []string, requireValue bool) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, s := range vals {
		k, v, ok := strings.Cut(s, "=")
		if k == "" || (requireValue && !ok) {
			return nil, fmt.Errorf("invalid %s format: %q", flag, s)
		}
		m[k] = v
	}
	return m, nil
}

func parseUlimits(vals []string) ([]*container.Ulimit, error) {
	var out []*container.Ulimit
	for _, v := range vals {
		u, err := units.ParseUlimit(v)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// parseDevice reads "host[:container][:permissions]".
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isDevicePermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		if !isDevicePermissions(parts[2]) {
			return d, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return d, fmt.Errorf("invalid device specification: %s", s)
	}
	return d, nil
}

func isDevicePermissions(s string) bool {
	return s != "" && strings.Trim(s, "rwm") == ""
}

// containerCreateOptions is the client's request for spec.
func (s *containerSpec) createOptions(name string) client.ContainerCreateOptions {
	return client.ContainerCreateOptions{Name: name, Config: s.config, HostConfig: s.host, NetworkingConfig: s.networking, Platform: s.platform}
}
