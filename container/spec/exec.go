package spec

import (
	"fmt"
	"path"
	"slices"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecInput describes a `docker exec` into a running container.
type ExecInput struct {
	// Config and HostConfig are the container's (Config after Merge).
	Config     *container.Config
	HostConfig *container.HostConfig
	Hostname   string
	// User is the resolved exec -u, or the container's user without -u.
	User User
	// Cmd, Env, WorkingDir, Tty, ConsoleSize and Privileged are the exec's
	// own options.
	Cmd         []string
	Env         []string
	WorkingDir  string
	Tty         bool
	ConsoleSize [2]uint
	Privileged  bool
	// CapLastCap, HostBounding and HostRlimits as in Input.
	CapLastCap   int
	HostBounding []string
	HostRlimits  map[string]uint64
}

// ExecProcess builds the process for `runc exec` the way Docker does: the
// environment is rebuilt for the exec's tty (PATH, HOSTNAME, TERM), then
// the container's variables, then the exec's -e; the working directory is
// -w or the container's; capabilities, no-new-privileges, AppArmor and
// rlimits are the container's, except that --privileged grants every
// capability.
func ExecProcess(in ExecInput) (*specs.Process, error) {
	if in.Config == nil || in.HostConfig == nil {
		return nil, fmt.Errorf("exec: container config and host config are required: %w", errdefs.ErrInvalidArgument)
	}
	if len(in.Cmd) == 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	hc := in.HostConfig
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	caps, err := Capabilities(hc.CapAdd, hc.CapDrop, hc.Privileged || in.Privileged, in.CapLastCap, in.HostBounding)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(hc.Ulimits, in.HostRlimits)
	if err != nil {
		return nil, err
	}
	cwd := in.WorkingDir
	if cwd == "" {
		cwd = in.Config.WorkingDir
	}
	if in.WorkingDir != "" && !path.IsAbs(in.WorkingDir) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "the working directory '%s' is invalid, it needs to be an absolute path", in.WorkingDir)
	}
	env := append(slices.Clone(in.Config.Env), in.Env...)
	p := &specs.Process{
		Terminal: in.Tty,
		User: specs.User{
			UID: in.User.UID, GID: in.User.GID,
			AdditionalGids: slices.Clone(in.User.AdditionalGids), Umask: hc.Umask,
		},
		Args:            slices.Clone(in.Cmd),
		Env:             processEnv(env, in.Hostname, in.Tty, homeOf(in.User)),
		Cwd:             path.Clean("/" + cwd),
		Capabilities:    processCaps(caps, in.User.UID),
		Rlimits:         rl,
		NoNewPrivileges: sec.noNewPrivileges,
	}
	if in.Tty && in.ConsoleSize != [2]uint{} {
		p.ConsoleSize = &specs.Box{Height: in.ConsoleSize[0], Width: in.ConsoleSize[1]}
	}
	if !hc.Privileged && !in.Privileged && sec.apparmor != "" && sec.apparmor != "unconfined" {
		p.ApparmorProfile = sec.apparmor
	}
	return p, nil
}

// homeOf is the user's passwd home, or Docker's default when it has none.
func homeOf(u User) string {
	switch {
	case u.Home != "":
		return u.Home
	case u.UID == 0:
		return "/root"
	}
	return "/"
}
