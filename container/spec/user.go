package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"berth/errdefs"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// User is a resolved process identity.
type User struct {
	UID            uint32
	GID            uint32
	AdditionalGids []uint32
	// Home is the passwd entry's home directory; empty when the user has
	// no entry, so the spec falls back to Docker's default.
	Home string
}

// Messages match runc's user package, which Docker users see verbatim.
const (
	errNoPasswd = "no matching entries in passwd file"
	errNoGroup  = "no matching entries in group file"
)

// maxID is the largest id the kernel accepts (2^31-2, like runc's check).
const maxID = 1<<31 - 2

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// ResolveUser resolves a Docker user specification (-u or the image's
// USER: "", "name", "uid", "name:group", "uid:gid", ...) plus --group-add
// entries against the rootfs's /etc/passwd and /etc/group, with the rules of
// runc's user package that Docker relies on:
//   - a numeric user is always a uid, found in passwd or not; a name must be
//     in passwd ("unable to find user xyz: no matching entries in passwd file");
//   - a group given after ':' becomes the primary gid and suppresses the
//     supplementary groups from /etc/group membership;
//   - without a group, the passwd gid is primary and every group that lists
//     the user name is supplementary;
//   - --group-add names must exist in /etc/group, numbers need not.
//
// Missing passwd or group files are treated as empty, as runc does, so
// numeric users work in images without them. The paths are resolved inside
// rootfs without following symlinks out of it.
func ResolveUser(rootfs, userSpec string, groupAdd []string) (User, error) {
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return User{}, err
	}
	groups, err := readGroups(rootfs)
	if err != nil {
		return User{}, err
	}
	return resolveUser(passwd, groups, userSpec, groupAdd)
}

func resolveUser(passwd []passwdEntry, groups []groupEntry, userSpec string, groupAdd []string) (User, error) {
	userArg, groupArg, _ := strings.Cut(userSpec, ":")
	u := User{}
	uidArg, uidErr := strconv.Atoi(userArg)
	matched := ""
	found := false
	for _, p := range passwd {
		if (userArg == "" && p.uid == 0) || (uidErr == nil && p.uid == uidArg) || (userArg != "" && uidErr != nil && p.name == userArg) {
			u.UID, u.GID, u.Home, matched, found = uint32(p.uid), uint32(p.gid), p.home, p.name, true
			break
		}
	}
	if !found && userArg != "" {
		if uidErr != nil {
			return User{}, fmt.Errorf("unable to find user %s: %s: %w", userArg, errNoPasswd, errdefs.ErrInvalidArgument)
		}
		if uidArg < 0 || uidArg > maxID {
			return User{}, fmt.Errorf("user %s: uids and gids must be in range 0-%d: %w", userArg, maxID, errdefs.ErrInvalidArgument)
		}
		u.UID = uint32(uidArg)
	}
	if groupArg != "" {
		gid, err := lookupGroup(groups, groupArg)
		if err != nil {
			return User{}, err
		}
		u.GID = gid
	}
	// As Docker: the primary group is among the supplementary ones too, so
	// it survives a setgroups and shows in /proc/self/status.
	u.AdditionalGids = []uint32{u.GID}
	if groupArg == "" && matched != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == matched {
					u.AdditionalGids = appendUnique(u.AdditionalGids, uint32(g.gid))
					break
				}
			}
		}
	}
	for _, ga := range groupAdd {
		gid, err := lookupGroup(groups, ga)
		if err != nil {
			return User{}, err
		}
		u.AdditionalGids = appendUnique(u.AdditionalGids, gid)
	}
	return u, nil
}

// lookupGroup finds a group by number (which need not exist) or by name
// (which must).
func lookupGroup(groups []groupEntry, arg string) (uint32, error) {
	gidArg, gidErr := strconv.Atoi(arg)
	for _, g := range groups {
		if (gidErr == nil && g.gid == gidArg) || (gidErr != nil && g.name == arg) {
			return uint32(g.gid), nil
		}
	}
	if gidErr != nil {
		return 0, fmt.Errorf("unable to find group %s: %s: %w", arg, errNoGroup, errdefs.ErrInvalidArgument)
	}
	if gidArg < 0 || gidArg > maxID {
		return 0, fmt.Errorf("group %s: uids and gids must be in range 0-%d: %w", arg, maxID, errdefs.ErrInvalidArgument)
	}
	return uint32(gidArg), nil
}

func appendUnique(list []uint32, v uint32) []uint32 {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readColonFile(rootfs, "etc/passwd", func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out, err
}

func readGroups(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readColonFile(rootfs, "etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

// readColonFile reads rootfs/rel with symlinks resolved inside rootfs, so
// an image whose /etc/passwd is an absolute symlink is read from the image,
// never from the host.
func readColonFile(rootfs, rel string, line func([]string)) error {
	p, err := securejoin.SecureJoin(rootfs, rel)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(rootfs, rel), err)
	}
	defer f.Close()
	return scanColonLines(f, line)
}

func scanColonLines(r io.Reader, line func([]string)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		line(strings.Split(text, ":"))
	}
	return sc.Err()
}
