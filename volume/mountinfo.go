package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/mount"
)

// mountEntry is one line of /proc/self/mountinfo: where, and the optional
// fields that tell its propagation ("shared:N", "master:N").
type mountEntry struct {
	point    string
	optional []string
}

func readMountinfo() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []mountEntry
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		e := mountEntry{point: unescape(f[4])}
		for _, o := range f[6:] {
			if o == "-" {
				break
			}
			e.optional = append(e.optional, o)
		}
		out = append(out, e)
	}
	return out, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

// mountOf finds the mount that holds path p: the last-mounted entry with
// the longest mount point at or above it.
func mountOf(mounts []mountEntry, p string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, m := range mounts {
		if within(p, m.point) && (!found || len(m.point) >= len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

func hasOptional(m mountEntry, prefix string) bool {
	for _, o := range m.optional {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

// CheckPropagation refuses shared or slave propagation for a bind whose
// source is on a mount that cannot propagate that way, as dockerd does:
// the runtime would otherwise succeed without the propagation working.
func CheckPropagation(source string, p mount.Propagation) error {
	var want string
	switch p {
	case mount.PropagationShared, mount.PropagationRShared:
		want = "shared"
	case mount.PropagationSlave, mount.PropagationRSlave:
		want = "shared or slave"
	default:
		return nil
	}
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		return fmt.Errorf("bind source %s: %w", source, err)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return err
	}
	m, ok := mountOf(mounts, real)
	if ok && (hasOptional(m, "shared:") || (want != "shared" && hasOptional(m, "master:"))) {
		return nil
	}
	return errdefs.Errorf(errdefs.ErrFailedPrecondition, "path %s is mounted on %s but it is not a %s mount", source, m.point, want)
}
