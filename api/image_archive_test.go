package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/api"
	"berth/api/apitest"

	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

func archiveServer(t *testing.T, a *apitest.Archives) *httptest.Server {
	t.Helper()
	imgs, sys := fixture()
	srv := httptest.NewServer(api.New(api.Options{Images: imgs, System: sys, ImageArchive: a}))
	t.Cleanup(srv.Close)
	return srv
}

func toyArchive(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		id := digest.FromString(n).String()
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(id))})
		io.WriteString(tw, id)
	}
	tw.Close()
	return buf.Bytes()
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr.Name)
	}
}

func TestSaveRoutes(t *testing.T) {
	t.Parallel()
	a := &apitest.Archives{Known: map[string]string{"busybox:latest": busyboxID, "other": danglingID, "example.com/ns/app:v1": busyboxID}}
	srv := archiveServer(t, a)
	cases := []struct {
		path   string
		status int
		ctype  string
		want   string // entry names, or the error message
	}{
		{"/v1.51/images/get?names=busybox:latest&names=other", 200, "application/x-tar", "busybox:latest other"},
		{"/images/example.com/ns/app:v1/get", 200, "application/x-tar", "example.com/ns/app:v1"},
		{"/images/get?names=nope", 404, "application/json", `{"message":"No such image: nope"}`},
		{"/images/get", 400, "application/json", `{"message":"save: no image names given (names=): invalid argument"}`},
	}
	for _, tc := range cases {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %s: %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		got := strings.TrimSpace(string(body))
		if tc.status == 200 {
			got = strings.Join(tarNames(t, body), " ")
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestSaveFailureCutsTheStream checks a save that fails after sending
// bytes ends the connection without the chunked terminator, so clients see
// an error instead of a short archive that looks complete.
func TestSaveFailureCutsTheStream(t *testing.T) {
	t.Parallel()
	a := &apitest.Archives{Known: map[string]string{"busybox:latest": busyboxID}, FailAfter: 700}
	srv := archiveServer(t, a)
	resp, err := http.Get(srv.URL + "/images/get?names=busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) || len(body) >= 700 {
		t.Fatalf("status %d, %d bytes, err %v", resp.StatusCode, len(body), err)
	}
}

func TestLoadRoute(t *testing.T) {
	t.Parallel()
	srv := archiveServer(t, &apitest.Archives{})
	layer := digest.FromString("busybox:latest").Encoded()[:12]
	progressLines := func(layer string) (string, string) {
		return `{"status":"Loading layer","progressDetail":{"current":1048576,"total":3145728},"progress":"[================\u003e                                  ]  1.049MB/3.146MB","id":"` + layer + `"}`,
			`{"status":"Loading layer","progressDetail":{"current":3145728,"total":3145728},"progress":"[==================================================\u003e]  3.146MB/3.146MB","id":"` + layer + `"}`
	}
	progress1, progress2 := progressLines(layer)
	untagged1, untagged2 := progressLines(digest.FromString("-").Encoded()[:12])
	loaded := `{"stream":"Loaded image: busybox:latest\n"}`
	untagged := `{"stream":"Loaded image ID: ` + digest.FromString("-").String() + `\n"}`
	cases := []struct {
		name   string
		query  string
		body   []byte
		status int
		want   []string
	}{
		{"progress", "?quiet=0", toyArchive(t, "busybox:latest", "-"), 200, []string{progress1, progress2, untagged1, untagged2, loaded, untagged}},
		{"quiet", "?quiet=1", toyArchive(t, "busybox:latest"), 200, []string{loaded}},
		{"quiet by default", "", toyArchive(t, "busybox:latest"), 200, []string{loaded}},
		{"empty archive", "?quiet=0", toyArchive(t), 200, nil},
		{"bad archive", "?quiet=0", toyArchive(t, "bad"), 400, []string{`{"message":"load: manifest.json: unexpected end of JSON input: invalid argument"}`}},
		{"failure after progress", "?quiet=0", toyArchive(t, "busybox:latest", "fail"), 200, []string{progress1, progress2,
			`{"errorDetail":{"message":"load: layer ` + digest.FromString("fail").String() + `: content does not match the config's diff ID: invalid argument"},"error":"load: layer ` + digest.FromString("fail").String() + `: content does not match the config's diff ID: invalid argument"}`}},
	}
	for _, tc := range cases {
		resp, err := http.Post(srv.URL+"/images/load"+tc.query, "application/x-tar", bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var lines []string
		for _, l := range strings.Split(string(body), "\n") {
			if l = strings.TrimRight(l, "\r"); l != "" {
				lines = append(lines, l)
			}
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || !slices.Equal(lines, tc.want) {
			t.Errorf("%s: %d %s\n%s\nwant %q", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), strings.Join(lines, "\n"), tc.want)
		}
	}
}

func TestArchiveWithMobyClient(t *testing.T) {
	t.Parallel()
	a := &apitest.Archives{Known: map[string]string{"busybox:latest": busyboxID}}
	imgs, sys := fixture()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Images: imgs, System: sys, ImageArchive: a}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	rc, err := c.ImageSave(ctx, []string{"busybox:latest"})
	if err != nil {
		t.Fatal(err)
	}
	arc, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || strings.Join(tarNames(t, arc), " ") != "busybox:latest" {
		t.Fatalf("ImageSave: %v %q", err, tarNames(t, arc))
	}
	if _, err := c.ImageSave(ctx, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "No such image: nope") {
		t.Fatalf("ImageSave of an unknown image: %v", err)
	}
	res, err := c.ImageLoad(ctx, bytes.NewReader(arc), client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res)
	res.Close()
	if strings.TrimSpace(string(out)) != `{"stream":"Loaded image: busybox:latest\n"}` {
		t.Fatalf("ImageLoad: %s", out)
	}
}
