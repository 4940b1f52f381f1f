package mount

import (
	"strings"

	"golang.org/x/sys/unix"
)

// flagOptions are the mount(8) words that become mount(2) flags rather than
// filesystem data. clear reports options such as "rw" that remove a flag.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"sync":        {false, unix.MS_SYNCHRONOUS},
	"async":       {true, unix.MS_SYNCHRONOUS},
	"noatime":     {false, unix.MS_NOATIME},
	"atime":       {true, unix.MS_NOATIME},
	"nodiratime":  {false, unix.MS_NODIRATIME},
	"diratime":    {true, unix.MS_NODIRATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"norelatime":  {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
}

// propagationOptions are applied by a separate mount(2) call after the mount
// exists, because the kernel rejects them combined with other flags.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsed is a Mount's Options split the way mount(2) wants them.
type parsed struct {
	flags       uintptr
	propagation uintptr
	data        []string
}

func parseOptions(opts []string) parsed {
	var p parsed
	for _, o := range opts {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationOptions[o]; ok {
			p.propagation |= f
			continue
		}
		p.data = append(p.data, o)
	}
	return p
}

// ReadOnly reports whether m mounts read-only: an explicit "ro", or an
// overlay without an upperdir, which the kernel always makes read-only.
func (m Mount) ReadOnly() bool {
	if parseOptions(m.Options).flags&unix.MS_RDONLY != 0 {
		return true
	}
	if m.Type == "overlay" {
		_, hasUpper := optionValue(m.Options, "upperdir")
		return !hasUpper
	}
	return false
}

// IsBind reports whether m is a bind mount of a directory.
func (m Mount) IsBind() bool {
	return m.Type == "bind" || parseOptions(m.Options).flags&unix.MS_BIND != 0
}

// Overlay is the layer layout of an overlay mount.
type Overlay struct {
	Lower []string // nearest layer first, as overlayfs orders them
	Upper string   // "" for a read-only overlay
	Work  string
}

// OverlayOf returns the layout of mounts when it is exactly one overlay
// mount. Callers use it to find where an Active snapshot's changes land.
func OverlayOf(mounts []Mount) (Overlay, bool) {
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		return Overlay{}, false
	}
	opts := mounts[0].Options
	var o Overlay
	if lower, ok := optionValue(opts, "lowerdir"); ok {
		o.Lower = SplitLowerdir(lower)
	}
	o.Upper, _ = optionValue(opts, "upperdir")
	o.Work, _ = optionValue(opts, "workdir")
	return o, true
}

// BindOf returns the source directory of mounts when it is exactly one bind
// mount, and whether that bind is read-only.
func BindOf(mounts []Mount) (dir string, readOnly, ok bool) {
	if len(mounts) != 1 || !mounts[0].IsBind() {
		return "", false, false
	}
	return mounts[0].Source, mounts[0].ReadOnly(), true
}

// WritableDir returns the directory that receives the writes made through
// mounts: the upperdir of an overlay or the source of a read-write bind.
// A layer diff of an Active snapshot reads exactly this directory.
func WritableDir(mounts []Mount) (string, bool) {
	if o, ok := OverlayOf(mounts); ok {
		return o.Upper, o.Upper != ""
	}
	if dir, ro, ok := BindOf(mounts); ok && !ro {
		return dir, true
	}
	return "", false
}

// JoinLowerdir builds an overlay lowerdir value from layer directories,
// escaping the ':' separator and the '\' escape inside paths.
func JoinLowerdir(dirs []string) string {
	esc := make([]string, len(dirs))
	for i, d := range dirs {
		esc[i] = strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(d)
	}
	return strings.Join(esc, ":")
}

// SplitLowerdir is the inverse of JoinLowerdir.
func SplitLowerdir(v string) []string {
	var dirs []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case v[i] == ':':
			dirs = append(dirs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(dirs, cur.String())
}

func optionValue(opts []string, key string) (string, bool) {
	for _, o := range opts {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
