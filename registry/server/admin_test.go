package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"berth/errdefs"
	"berth/registry/auth"
)

func TestDeleteRepository(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, repo := range []string{"team/app", "team/app/sub", "team/other"} {
		e.pushManifest(repo, "v1", mtOCIManifest, e.image(repo, repo)).want(t, 201, "")
	}
	d := e.driver()
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		want error
	}{
		{"team/app", nil},
		{"team/app", errdefs.ErrNotFound},
		{"team", errdefs.ErrNotFound}, // a prefix of repositories is none
		{"Team/App", errdefs.ErrInvalidArgument},
		{"../x", errdefs.ErrInvalidArgument},
	} {
		if err := DeleteRepository(ctx, d, tc.name); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("DeleteRepository(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
	var cat struct{ Repositories []string }
	e.do("GET", "/v2/_catalog", nil).want(t, 200, "").json(t, &cat)
	if !slices.Equal(cat.Repositories, []string{"team/app/sub", "team/other"}) {
		t.Fatalf("catalog after delete: %v", cat.Repositories)
	}
	e.do("GET", "/v2/team/app/tags/list", nil).want(t, 404, codeNameUnknown)
	e.do("GET", "/v2/team/app/manifests/v1", nil).want(t, 404, codeManifestUnknown)
	if !e.pullable("team/app/sub", "v1") {
		t.Fatal("nested repository damaged")
	}
	// Its blobs are garbage now; the shared config is not.
	rep := e.collect(GCOptions{})
	if rep.DeletedBlobs != 2 {
		t.Fatalf("collection after delete: %+v", rep)
	}
}

// denyAll lets only requests without needs through: the admin API's
// authorization path without accounts.
type denyAll struct{}

func (denyAll) Authorize(r *http.Request, want []auth.Access) error {
	if len(want) == 0 {
		return nil
	}
	return &auth.Error{Status: 403, Code: "DENIED", Message: "denied " + want[0].Scope()}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pushManifest("a/app", "v1", mtOCIManifest, e.image("a/app", "l")).want(t, 201, "")
	e.pushBlob("a/app", []byte("orphan"))
	admin := httptest.NewServer(e.srv.NewAdmin(GCOptions{Grace: 1}))
	t.Cleanup(admin.Close)
	var rep GCReport
	e.do("POST", admin.URL+"/api/v1/gc?dryRun=true", nil).want(t, 200, "").json(t, &rep)
	if !rep.DryRun || rep.DeletedBlobs != 1 {
		t.Fatalf("dry run %+v", rep)
	}
	e.do("POST", admin.URL+"/api/v1/gc", nil).want(t, 200, "").json(t, &rep)
	if rep.DryRun || rep.DeletedBlobs != 1 || rep.LiveBlobs != 3 {
		t.Fatalf("collection %+v", rep)
	}
	var st GCState
	e.do("GET", admin.URL+"/api/v1/gc", nil).want(t, 200, "").json(t, &st)
	if st.Active || st.Run != rep.Run || st.Report == nil || st.Report.DeletedBlobs != 1 {
		t.Fatalf("state %+v", st)
	}
	e.do("DELETE", admin.URL+"/api/v1/repositories/a/app", nil).want(t, 202, "")
	e.do("DELETE", admin.URL+"/api/v1/repositories/a/app", nil).want(t, 404, codeNameUnknown)
	e.do("DELETE", admin.URL+"/api/v1/repositories/A", nil).want(t, 400, codeNameInvalid)
	e.do("PUT", admin.URL+"/api/v1/gc", nil).want(t, 404, codeUnsupported)

	denied := httptest.NewServer(New(Options{Storage: e.driver(), Authorizer: denyAll{}}).NewAdmin(GCOptions{}))
	t.Cleanup(denied.Close)
	e.do("POST", denied.URL+"/api/v1/gc", nil).want(t, 403, "DENIED")
	e.do("GET", denied.URL+"/api/v1/gc", nil).want(t, 403, "DENIED")
	e.do("DELETE", denied.URL+"/api/v1/repositories/a/app/sub", nil).want(t, 403, "DENIED")
}
