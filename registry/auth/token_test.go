package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/registry/storage/fs"
)

func newTokens(t *testing.T) (*Tokens, *httptest.Server) {
	t.Helper()
	a := newAccounts(t)
	tk, err := NewTokens(t.Context(), a.d, a, TokenConfig{Service: "reg.test", Issuer: "issuer.test", TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(tk)
	t.Cleanup(ts.Close)
	return tk, ts
}

func fetchToken(t *testing.T, req *http.Request) (int, tokenResponse) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr tokenResponse
	if res.StatusCode == 200 {
		if err := json.NewDecoder(res.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode, tr
}

func getToken(t *testing.T, base, user, pass string, query string) (int, tokenResponse) {
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/token?"+query, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return fetchToken(t, req)
}

func postToken(t *testing.T, base string, form url.Values) (int, tokenResponse) {
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return fetchToken(t, req)
}

func authorizeWith(tk *Tokens, token string, want []Access) error {
	r := httptest.NewRequest("GET", "http://reg.example/v2/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return tk.Authorize(r, want)
}

func repo(name string, actions ...string) Access {
	return Access{Type: "repository", Name: name, Actions: actions}
}

func TestTokenGrantIsIntersection(t *testing.T) {
	t.Parallel()
	tk, ts := newTokens(t)
	q := "service=reg.test&scope=repository:alice/app:pull,push&scope=repository:carol/app:pull,push&scope=repository:bob/lib:pull,push"
	status, tr := getToken(t, ts.URL, "alice", "alice-pw", q)
	if status != 200 || tr.Token == "" || tr.Token != tr.AccessToken || tr.ExpiresIn < 60 || tr.IssuedAt == "" {
		t.Fatalf("token response %d %+v", status, tr)
	}
	if tr.Scope != "repository:alice/app:pull,push repository:bob/lib:pull" {
		t.Fatalf("granted scope %q", tr.Scope)
	}
	tests := []struct {
		want []Access
		ok   bool
	}{
		{[]Access{repo("alice/app", "push")}, true},
		{[]Access{repo("bob/lib", "pull")}, true},
		{[]Access{repo("bob/lib", "push")}, false},
		{[]Access{repo("carol/app", "pull")}, false},
		{nil, true},
	}
	for _, tc := range tests {
		err := authorizeWith(tk, tr.Token, tc.want)
		if (err == nil) != tc.ok {
			t.Errorf("Authorize(%v) = %v, want ok=%v", tc.want, err, tc.ok)
		}
		var ae *Error
		if err != nil && (!errors.As(err, &ae) || !strings.Contains(ae.Challenge, `error="insufficient_scope"`)) {
			t.Errorf("denial %v lacks insufficient_scope challenge", err)
		}
	}
}

func TestTokenChallenge(t *testing.T) {
	t.Parallel()
	tk, _ := newTokens(t)
	err := authorizeWith(tk, "", []Access{repo("alice/app", "pull", "push")})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "UNAUTHORIZED" {
		t.Fatalf("err = %v", err)
	}
	want := `Bearer realm="http://reg.example/token",service="reg.test",scope="repository:alice/app:pull,push"`
	if ae.Challenge != want {
		t.Fatalf("challenge %q\nwant      %q", ae.Challenge, want)
	}
}

func TestTokenRejections(t *testing.T) {
	t.Parallel()
	tk, ts := newTokens(t)
	if status, _ := getToken(t, ts.URL, "alice", "wrong", "service=reg.test"); status != 401 {
		t.Fatalf("bad password status %d", status)
	}
	if status, _ := getToken(t, ts.URL, "alice", "alice-pw", "service=other"); status != 400 {
		t.Fatalf("wrong service status %d", status)
	}
	if status, _ := getToken(t, ts.URL, "alice", "alice-pw", "scope=bad"); status != 400 {
		t.Fatalf("bad scope status %d", status)
	}
	_, tr := getToken(t, ts.URL, "alice", "alice-pw", "scope=repository:alice/app:pull")
	want := []Access{repo("alice/app", "pull")}
	// Expired.
	later := *tk
	later.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := authorizeWith(&later, tr.Token, want); err == nil {
		t.Fatal("expired token accepted")
	}
	// Signed by another registry's key.
	d2, _ := fs.New(t.TempDir())
	other, err := NewTokens(t.Context(), d2, tk.accounts, tk.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := authorizeWith(other, tr.Token, want); err == nil {
		t.Fatal("token of another key accepted")
	}
	// Tampered payload.
	parts := strings.Split(tr.Token, ".")
	if err := authorizeWith(tk, parts[0]+"."+parts[1]+"x."+parts[2], want); err == nil {
		t.Fatal("tampered token accepted")
	}
	// Anonymous tokens carry only public pulls.
	_, anon := getToken(t, ts.URL, "", "", "scope=repository:bob/lib:pull,push&scope=repository:alice/app:pull")
	if anon.Scope != "repository:bob/lib:pull" {
		t.Fatalf("anonymous scope %q", anon.Scope)
	}
}

func TestTokenOAuth2AndRefresh(t *testing.T) {
	t.Parallel()
	tk, ts := newTokens(t)
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"},
		"service": {"reg.test"}, "client_id": {"test"}, "access_type": {"offline"}, "scope": {"repository:alice/app:pull,push"}}
	status, tr := postToken(t, ts.URL, form)
	if status != 200 || tr.RefreshToken == "" || tr.AccessToken == "" {
		t.Fatalf("password grant %d %+v", status, tr)
	}
	// A refresh token is not an access token.
	if err := authorizeWith(tk, tr.RefreshToken, nil); err == nil {
		t.Fatal("refresh token accepted as access token")
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "service": {"reg.test"},
		"client_id": {"test"}, "scope": {"repository:alice/app:pull"}}
	status, tr2 := postToken(t, ts.URL, refresh)
	if status != 200 || authorizeWith(tk, tr2.AccessToken, []Access{repo("alice/app", "pull")}) != nil {
		t.Fatalf("refresh grant %d %+v", status, tr2)
	}
	// GET with offline_token also yields one.
	if _, tr3 := getToken(t, ts.URL, "alice", "alice-pw", "offline_token=true&client_id=x"); tr3.RefreshToken == "" {
		t.Fatal("GET offline_token gave no refresh token")
	}
	// Changing the password revokes refresh tokens.
	if err := tk.accounts.SetPassword(t.Context(), "alice", "changed"); err != nil {
		t.Fatal(err)
	}
	if status, _ := postToken(t, ts.URL, refresh); status != 401 {
		t.Fatalf("refresh after password change: %d", status)
	}
	if status, _ := postToken(t, ts.URL, url.Values{"grant_type": {"client_credentials"}}); status != 400 {
		t.Fatalf("unsupported grant: %d", status)
	}
}

// TestKeyCreatedOnceByReplicas: registries starting together over one
// storage end up signing with one key, so tokens from any are valid at all.
func TestKeyCreatedOnceByReplicas(t *testing.T) {
	t.Parallel()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccounts(d)
	var wg sync.WaitGroup
	tokens := make([]*Tokens, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk, err := NewTokens(t.Context(), d, acc, TokenConfig{Service: "s", Issuer: "i"})
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = tk
		}()
	}
	wg.Wait()
	for _, tk := range tokens[1:] {
		if tk == nil || tokens[0] == nil || !tk.key.Equal(tokens[0].key) {
			t.Fatal("replicas disagree on the signing key")
		}
	}
}
