package spec

import (
	"fmt"
	"strconv"
	"strings"

	"berth/errdefs"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// ParseRestartPolicy parses --restart: "no", "always", "unless-stopped",
// "on-failure" or "on-failure:N". The empty string is "no". Messages are
// Docker's.
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		if p.Name != container.RestartPolicyOnFailure {
			return container.RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument,
				"invalid restart policy format: maximum retry count can only be used with 'on-failure'")
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument,
				"invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return container.RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	return p, nil
}

// ParseMemorySize parses a size such as "512m" or "1g" (binary units,
// "b" suffix optional), as --memory, --memory-swap and --shm-size take.
func ParseMemorySize(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	return n, nil
}

// ParseUlimit parses --ulimit name=soft[:hard]; without a hard value the
// hard limit equals the soft one.
func ParseUlimit(s string) (*container.Ulimit, error) {
	u, err := units.ParseUlimit(s)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	return u, nil
}

// securityOpts is the parsed --security-opt list.
type securityOpts struct {
	noNewPrivileges   bool
	seccompUnconfined bool
	seccompProfile    string
	systemPathsOpen   bool
	apparmor          string
}

// parseSecurityOpts accepts "key=value" and the legacy "key:value".
// A custom seccomp profile arrives as its JSON text (the CLI reads the
// file). SELinux labels are refused rather than silently ignored, so a user
// never believes a policy is in force.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for i, opt := range opts {
		if opt == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return s, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --security-opt %d: %q", i+1, opt)
		}
		switch {
		case k == "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --security-opt 2: %q", opt)
			}
			s.noNewPrivileges = b
		case k == "seccomp" && v == "unconfined":
			s.seccompUnconfined = true
		case k == "seccomp":
			s.seccompProfile = v
		case k == "systempaths" && v == "unconfined":
			s.systemPathsOpen = true
		case k == "apparmor":
			s.apparmor = v
		case k == "label" && v == "disable":
		case k == "label":
			return s, fmt.Errorf("security-opt label: SELinux labels: %w", errdefs.ErrNotImplemented)
		default:
			return s, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --security-opt 2: %q", opt)
		}
	}
	return s, nil
}
