package spec

import (
	"maps"
	"path"
	"slices"
	"strings"

	"berth/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// DefaultPath is PATH when neither the image nor the container sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Merge fills a create request's config from the image config the way
// Docker does at create time; the result is what inspect shows:
//   - no entrypoint given: the image's Cmd is used when no cmd is given,
//     and the image's Entrypoint is used;
//   - --entrypoint X: the image's Cmd is dropped unless a cmd is given;
//   - --entrypoint "" (sent as [""]): no entrypoint at all;
//   - env: the container's variables, then the image's it does not set;
//   - WorkingDir, User, StopSignal, Healthcheck: the container's when set;
//   - labels, volumes and exposed ports: the union, container winning.
//
// A cleared entrypoint is stored as an empty non-nil slice, which keeps
// Merge idempotent: merging the result again changes nothing, so Generate
// may be given either the request or the stored merged config. The error
// is "no command specified" when neither entrypoint nor cmd remains.
func Merge(cfg *container.Config, img dockerspec.DockerOCIImageConfig) (*container.Config, error) {
	if cfg.WorkingDir != "" && !path.IsAbs(cfg.WorkingDir) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	out := *cfg
	if len(out.Entrypoint) == 0 {
		if len(out.Cmd) == 0 {
			out.Cmd = slices.Clone(img.Cmd)
			out.ArgsEscaped = img.ArgsEscaped
		}
		if out.Entrypoint == nil {
			out.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if len(out.Entrypoint) == 1 && out.Entrypoint[0] == "" {
		out.Entrypoint = []string{}
	}
	if len(out.Entrypoint) == 0 && len(out.Cmd) == 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "no command specified")
	}
	out.Env = mergeImageEnv(cfg.Env, img.Env)
	if out.WorkingDir == "" {
		out.WorkingDir = img.WorkingDir
	}
	if out.User == "" {
		out.User = img.User
	}
	if out.StopSignal == "" {
		out.StopSignal = img.StopSignal
	}
	if out.Healthcheck == nil && img.Healthcheck != nil {
		hc := *img.Healthcheck
		out.Healthcheck = &hc
	}
	out.Labels = union(img.Labels, cfg.Labels)
	out.Volumes = union(img.Volumes, cfg.Volumes)
	out.ExposedPorts = mergePorts(img.ExposedPorts, cfg.ExposedPorts)
	return &out, nil
}

func union[V any](base, over map[string]V) map[string]V {
	if len(base) == 0 && len(over) == 0 {
		return over
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, over)
	return out
}

func mergePorts(img map[string]struct{}, cfg network.PortSet) network.PortSet {
	if len(img) == 0 {
		return cfg
	}
	out := maps.Clone(cfg)
	if out == nil {
		out = network.PortSet{}
	}
	for p := range img {
		// An unparsable port in an image config is dropped, as the
		// image would be rejected by Docker's own parser too.
		if port, err := network.ParsePort(p); err == nil {
			out[port] = struct{}{}
		}
	}
	return out
}

// mergeImageEnv keeps the container's variables and adds the image's ones
// it does not set.
func mergeImageEnv(user, image []string) []string {
	if len(user) == 0 {
		return slices.Clone(image)
	}
	out := slices.Clone(user)
	for _, ie := range image {
		k, _, _ := strings.Cut(ie, "=")
		if !slices.ContainsFunc(user, func(ue string) bool { uk, _, _ := strings.Cut(ue, "="); return uk == k }) {
			out = append(out, ie)
		}
	}
	return out
}

// processEnv builds the process environment as Docker does at start:
// PATH, HOSTNAME and (with a tty) TERM=xterm first, then the container's
// merged variables replace or extend them (a bare "NAME" unsets NAME), and
// HOME is added last when nothing set it.
func processEnv(env []string, hostname string, tty bool, home string) []string {
	out := []string{"PATH=" + DefaultPath, "HOSTNAME=" + hostname}
	if tty {
		out = append(out, "TERM=xterm")
	}
	for _, e := range env {
		k, _, hasValue := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(o string) bool { ok, _, _ := strings.Cut(o, "="); return ok == k })
		switch {
		case !hasValue && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !hasValue:
		case i >= 0:
			out[i] = e
		default:
			out = append(out, e)
		}
	}
	if !slices.ContainsFunc(out, func(o string) bool { return strings.HasPrefix(o, "HOME=") }) {
		out = append(out, "HOME="+home)
	}
	return out
}

// commandArgs is the process argv: entrypoint then cmd.
func commandArgs(cfg *container.Config) []string {
	return append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
}
