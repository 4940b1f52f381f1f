package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"berth/errdefs"
	"berth/registry/storage"
)

const accountsPath = "auth/accounts.json"

// User is a stored account.
type User struct {
	Hash  string `json:"hash"`
	Admin bool   `json:"admin,omitempty"`
}

// Namespace is the policy of the repositories under "<name>/". The key ""
// governs top-level repositories.
type Namespace struct {
	Public  bool     `json:"public,omitempty"`
	Writers []string `json:"writers,omitempty"`
	Readers []string `json:"readers,omitempty"`
}

type accountsFile struct {
	Users      map[string]User      `json:"users"`
	Namespaces map[string]Namespace `json:"namespaces"`
}

// UserInfo is what List reports about a user.
type UserInfo struct {
	Name   string `json:"name"`
	Admin  bool   `json:"admin"`
	Public bool   `json:"public"`
}

// Accounts manages users and namespaces kept in storage. Reads are cached for
// a moment so an authorization check does not read storage every time, and
// successful password checks are remembered so bcrypt runs once per password
// change rather than once per request.
type Accounts struct {
	d        storage.Driver
	cacheTTL time.Duration

	mu       sync.Mutex
	cached   *accountsFile
	cachedAt time.Time
	verified map[string][32]byte // user -> sha256(hash, password) last verified
}

// NewAccounts returns the accounts stored in d.
func NewAccounts(d storage.Driver) *Accounts {
	return &Accounts{d: d, cacheTTL: 2 * time.Second, verified: map[string][32]byte{}}
}

// userNameRe keeps user names valid as a repository name component, since
// every user owns the namespace of their name.
var userNameRe = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)

func (a *Accounts) load(ctx context.Context, fresh bool) (*accountsFile, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !fresh && a.cached != nil && time.Since(a.cachedAt) < a.cacheTTL {
		return a.cached, nil
	}
	f := &accountsFile{Users: map[string]User{}, Namespaces: map[string]Namespace{}}
	b, err := a.d.Get(ctx, accountsPath)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("accounts: %w", err)
	default:
		if err := json.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("accounts %s: %w", accountsPath, err)
		}
		if f.Users == nil {
			f.Users = map[string]User{}
		}
		if f.Namespaces == nil {
			f.Namespaces = map[string]Namespace{}
		}
	}
	a.cached, a.cachedAt = f, time.Now()
	return f, nil
}

// update applies fn to freshly read accounts and stores the result.
func (a *Accounts) update(ctx context.Context, fn func(f *accountsFile) error) error {
	f, err := a.load(ctx, true)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if err := a.d.Put(ctx, accountsPath, b); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	a.mu.Lock()
	a.cached = nil
	a.mu.Unlock()
	return nil
}

func hashPassword(name, password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("user %s: empty password: %w", name, errdefs.ErrInvalidArgument)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("user %s: hash password: %w", name, errdefs.ErrInvalidArgument)
	}
	return string(h), nil
}

// Add creates a user, and their namespace as public or private.
func (a *Accounts) Add(ctx context.Context, name, password string, admin, public bool) error {
	if !userNameRe.MatchString(name) {
		return fmt.Errorf("user name %q: must be a lowercase repository name component: %w", name, errdefs.ErrInvalidArgument)
	}
	h, err := hashPassword(name, password)
	if err != nil {
		return err
	}
	return a.update(ctx, func(f *accountsFile) error {
		if _, ok := f.Users[name]; ok {
			return fmt.Errorf("user %s: %w", name, errdefs.ErrAlreadyExists)
		}
		f.Users[name] = User{Hash: h, Admin: admin}
		ns := f.Namespaces[name]
		ns.Public = public
		f.Namespaces[name] = ns
		return nil
	})
}

// SetPassword replaces a user's password.
func (a *Accounts) SetPassword(ctx context.Context, name, password string) error {
	h, err := hashPassword(name, password)
	if err != nil {
		return err
	}
	return a.update(ctx, func(f *accountsFile) error {
		u, ok := f.Users[name]
		if !ok {
			return fmt.Errorf("user %s: %w", name, errdefs.ErrNotFound)
		}
		u.Hash = h
		f.Users[name] = u
		return nil
	})
}

// Remove deletes a user and their namespace policy (not their images) and
// drops them from other namespaces' member lists.
func (a *Accounts) Remove(ctx context.Context, name string) error {
	return a.update(ctx, func(f *accountsFile) error {
		if _, ok := f.Users[name]; !ok {
			return fmt.Errorf("user %s: %w", name, errdefs.ErrNotFound)
		}
		delete(f.Users, name)
		delete(f.Namespaces, name)
		for k, ns := range f.Namespaces {
			ns.Writers = slices.DeleteFunc(ns.Writers, func(s string) bool { return s == name })
			ns.Readers = slices.DeleteFunc(ns.Readers, func(s string) bool { return s == name })
			f.Namespaces[k] = ns
		}
		return nil
	})
}

// SetNamespace replaces the policy of a namespace ("" for top level).
func (a *Accounts) SetNamespace(ctx context.Context, name string, ns Namespace) error {
	if name != "" && !userNameRe.MatchString(name) {
		return fmt.Errorf("namespace %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return a.update(ctx, func(f *accountsFile) error {
		f.Namespaces[name] = ns
		return nil
	})
}

// List returns the users sorted by name.
func (a *Accounts) List(ctx context.Context) ([]UserInfo, error) {
	f, err := a.load(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(f.Users))
	for n, u := range f.Users {
		out = append(out, UserInfo{Name: n, Admin: u.Admin, Public: f.Namespaces[n].Public})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Verify checks a password. Failures are of kind ErrUnauthenticated and do
// not say whether the user exists.
func (a *Accounts) Verify(ctx context.Context, name, password string) (User, error) {
	f, err := a.load(ctx, false)
	if err != nil {
		return User{}, err
	}
	u, ok := f.Users[name]
	bad := fmt.Errorf("user %s: invalid username or password: %w", name, errdefs.ErrUnauthenticated)
	if !ok {
		return User{}, bad
	}
	key := sha256.Sum256([]byte(u.Hash + "\x00" + password))
	a.mu.Lock()
	hit := a.verified[name] == key
	a.mu.Unlock()
	if hit {
		return u, nil
	}
	if bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) != nil {
		return User{}, bad
	}
	a.mu.Lock()
	if len(a.verified) > 10000 {
		clear(a.verified)
	}
	a.verified[name] = key
	a.mu.Unlock()
	return u, nil
}

// user returns a user record; ok is false for unknown users.
func (a *Accounts) user(ctx context.Context, name string) (User, bool, error) {
	f, err := a.load(ctx, false)
	if err != nil {
		return User{}, false, err
	}
	u, ok := f.Users[name]
	return u, ok, nil
}

var allRepoActions = []string{ActionPull, ActionPush, ActionDelete}

// Allowed returns the actions of want that user ("" for anonymous) may
// perform: the intersection of the asked and the permitted.
func (a *Accounts) Allowed(ctx context.Context, user string, want Access) ([]string, error) {
	f, err := a.load(ctx, false)
	if err != nil {
		return nil, err
	}
	u, known := f.Users[user]
	var permitted []string
	switch {
	case want.Type == "registry" && want.Name == "catalog":
		if known && u.Admin {
			permitted = []string{"*"}
		}
	case want.Type != "repository":
	case known && u.Admin:
		permitted = allRepoActions
	default:
		permitted = repoActions(f, user, known, want.Name)
	}
	return intersect(want.Actions, permitted), nil
}

func repoActions(f *accountsFile, user string, known bool, repo string) []string {
	nsName := ""
	if i := strings.Index(repo, "/"); i > 0 {
		nsName = repo[:i]
	}
	if known && nsName == user {
		return allRepoActions
	}
	ns := f.Namespaces[nsName]
	switch {
	case known && slices.Contains(ns.Writers, user):
		return []string{ActionPull, ActionPush}
	case known && slices.Contains(ns.Readers, user), ns.Public:
		return []string{ActionPull}
	}
	return nil
}

// intersect keeps the asked actions that are permitted; "*" on either side
// stands for every action of the other.
func intersect(asked, permitted []string) []string {
	var out []string
	for _, act := range asked {
		if slices.Contains(permitted, act) || slices.Contains(permitted, "*") {
			out = append(out, act)
		} else if act == "*" {
			out = append(out, permitted...)
		}
	}
	return out
}
