package auth

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"berth/errdefs"
	"berth/registry/storage/fs"
)

func newAccounts(t *testing.T) *Accounts {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := NewAccounts(d)
	ctx := t.Context()
	for _, u := range []struct {
		name          string
		admin, public bool
	}{{"root", true, false}, {"alice", false, false}, {"bob", false, true}, {"carol", false, false}} {
		if err := a.Add(ctx, u.name, u.name+"-pw", u.admin, u.public); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetNamespace(ctx, "team", Namespace{Writers: []string{"carol"}, Readers: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Access
		ok   bool
	}{
		{"repository:foo/bar:pull,push", Access{Type: "repository", Name: "foo/bar", Actions: []string{"pull", "push"}}, true},
		{"repository:host:5000/x:pull", Access{Type: "repository", Name: "host:5000/x", Actions: []string{"pull"}}, true},
		{"registry:catalog:*", Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}, true},
		{"repository:foo:pull,pull,", Access{Type: "repository", Name: "foo", Actions: []string{"pull"}}, true},
		{"nocolon", Access{}, false},
		{"one:colon", Access{}, false},
	}
	for _, tc := range tests {
		got, err := ParseScope(tc.in)
		if (err == nil) != tc.ok || tc.ok && (got.Type != tc.want.Type || got.Name != tc.want.Name || !slices.Equal(got.Actions, tc.want.Actions)) {
			t.Errorf("ParseScope(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	all := []string{"pull", "push", "delete"}
	tests := []struct {
		user, repo string
		want       []string
	}{
		{"root", "anything/at/all", all},
		{"root", "toplevel", all},
		{"alice", "alice/app", all},
		{"alice", "bob/app", []string{"pull"}}, // bob's namespace is public
		{"", "bob/app", []string{"pull"}},      // anonymous too
		{"alice", "carol/app", nil},            // private
		{"", "alice/app", nil},
		{"alice", "toplevel", nil}, // top level is for admins
		{"carol", "team/x", []string{"pull", "push"}},
		{"alice", "team/x", []string{"pull"}},
		{"bob", "team/x", nil},
		{"mallory", "mallory/x", nil}, // unknown users own nothing
	}
	for _, tc := range tests {
		got, err := a.Allowed(t.Context(), tc.user, Access{Type: "repository", Name: tc.repo, Actions: all})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Allowed(%q, %s) = %v, want %v", tc.user, tc.repo, got, tc.want)
		}
	}
	cat := Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	if got, _ := a.Allowed(t.Context(), "root", cat); !slices.Equal(got, []string{"*"}) {
		t.Errorf("admin catalog = %v", got)
	}
	if got, _ := a.Allowed(t.Context(), "alice", cat); got != nil {
		t.Errorf("user catalog = %v", got)
	}
}

func TestAccountsLifecycle(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	ctx := t.Context()
	if err := a.Add(ctx, "alice", "x", false, false); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate add = %v", err)
	}
	for _, bad := range []string{"Alice", "a/b", "", "-x"} {
		if err := a.Add(ctx, bad, "x", false, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Add(%q) = %v", bad, err)
		}
	}
	if err := a.Add(ctx, "dave", "", false, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty password = %v", err)
	}
	if _, err := a.Verify(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, "alice", "alice-pw"); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("old password after passwd = %v", err)
	}
	if _, err := a.Verify(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, "alice", "new"); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("removed user verifies: %v", err)
	}
	if err := a.Remove(ctx, "alice"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove = %v", err)
	}
	users, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"bob", "carol", "root"}) {
		t.Fatalf("List = %v", names)
	}
}

func TestBasicAuthorizer(t *testing.T) {
	t.Parallel()
	b := &Basic{Accounts: newAccounts(t), Realm: "test"}
	push := func(repo string) []Access {
		return []Access{{Type: "repository", Name: repo, Actions: []string{"pull", "push"}}}
	}
	tests := []struct {
		name, user, pass string
		want             []Access
		status           int // 0 allowed
	}{
		{"own namespace", "alice", "alice-pw", push("alice/x"), 0},
		{"other namespace", "alice", "alice-pw", push("carol/x"), 403},
		{"wrong password", "alice", "nope", push("alice/x"), 401},
		{"anonymous push", "", "", push("bob/x"), 401},
		{"anonymous public pull", "", "", []Access{{Type: "repository", Name: "bob/x", Actions: []string{"pull"}}}, 0},
		{"anonymous root", "", "", nil, 401},
		{"user root", "alice", "alice-pw", nil, 0},
		{"optional ignored", "alice", "alice-pw", append(push("alice/x"), Access{Type: "repository", Name: "carol/x", Actions: []string{"pull"}, Optional: true}), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/", nil)
			if tc.user != "" {
				r.SetBasicAuth(tc.user, tc.pass)
			}
			err := b.Authorize(r, tc.want)
			var ae *Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("denied: %v", err)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
				t.Fatalf("err = %v, want status %d", err, tc.status)
			case tc.status == 401 && ae.Challenge != `Basic realm="test"`:
				t.Fatalf("challenge %q", ae.Challenge)
			}
		})
	}
}
