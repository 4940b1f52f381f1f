package image

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"berth/errdefs"
	"berth/remote"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPushRoundTrip(t *testing.T) {
	reg := newTestRegistry(t)
	forEachDriver(t, func(t *testing.T, s *Service) {
		s.dist = newDistribution(newRemote(), 3, 5)
		ctx := context.Background()
		repo := reg.host + "/berth-test/push-" + s.driver
		id := importBusybox(t, s, repo+":v1", `CMD ["sh"]`)
		layers, err := s.imageLayers(digest.Digest(id))
		if err != nil {
			t.Fatal(err)
		}
		short := shortID(layers[0].DiffID)

		var rec recorder
		if err := s.PushImage(ctx, repo+":v1", PushOptions{}, rec.add); err != nil {
			t.Fatalf("push: %v", err)
		}
		res := lastAux(t, &rec)
		want := []string{
			"The push refers to repository [" + repo + "]",
			short + ": Preparing",
			short + ": Pushed",
			"v1: digest: " + res.Digest + " size: " + itoa(int64(res.Size)),
		}
		if got := rec.lines(); !slices.Equal(got, want) {
			t.Fatalf("push output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		checkPushedManifest(t, repo+":v1", res)
		ins, err := s.ImageInspect(ctx, id)
		if err != nil || !slices.Contains(ins.RepoDigests, repo+"@"+res.Digest) {
			t.Fatalf("repo digests after push: %v %v", ins.RepoDigests, err)
		}

		// Again: the layer is known to be there, nothing is compressed or
		// uploaded.
		mark := reg.mark()
		rec = recorder{}
		if err := s.PushImage(ctx, repo, PushOptions{Tag: "v1"}, rec.add); err != nil {
			t.Fatal(err)
		}
		if !rec.has(short+": Layer already exists") || reg.count(mark, "POST", "/berth-test/push-"+s.driver+"/blobs/uploads/") != 0 {
			t.Fatalf("second push:\n%s", strings.Join(rec.lines(), "\n"))
		}

		// Another repository of the same registry: mounted, not uploaded.
		other := reg.host + "/berth-test/other-" + s.driver + ":v2"
		if err := s.TagImage(ctx, id, other); err != nil {
			t.Fatal(err)
		}
		mark = reg.mark()
		rec = recorder{}
		if err := s.PushImage(ctx, other, PushOptions{}, rec.add); err != nil {
			t.Fatal(err)
		}
		if !rec.has(short+": Mounted from berth-test/push-"+s.driver) || reg.count(mark, "PUT", "/berth-test/other-"+s.driver+"/blobs/uploads/") != 1 /* the config */ {
			t.Fatalf("push to a sibling repository:\n%s", strings.Join(rec.lines(), "\n"))
		}

		// What was pushed pulls back as the same image.
		for _, d := range drivers {
			fresh := newPullService(t, d, newRemote())
			if err := fresh.PullImage(ctx, other, PullOptions{}, nil); err != nil {
				t.Fatal(err)
			}
			got, err := fresh.Resolve(ctx, other)
			if err != nil || got.String() != id {
				t.Fatalf("pulled back %s (%v), pushed %s", got, err, id)
			}
			if sh := pulledFile(t, fresh, other, "bin/sh"); len(sh) == 0 {
				t.Fatal("bin/sh empty after round trip")
			}
			// The pull remembered where the layer came from: pushing to
			// a third repository mounts it instead of compressing it.
			third := reg.host + "/berth-test/third-" + s.driver + "-" + d.name + ":v3"
			if err := fresh.TagImage(ctx, other, third); err != nil {
				t.Fatal(err)
			}
			rec = recorder{}
			if err := fresh.PushImage(ctx, third, PushOptions{}, rec.add); err != nil {
				t.Fatal(err)
			}
			if !rec.has(short + ": Mounted from berth-test/other-" + s.driver) {
				t.Fatalf("push after pull:\n%s", strings.Join(rec.lines(), "\n"))
			}
		}
	})
}

func lastAux(t *testing.T, rec *recorder) PushResult {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := len(rec.msgs) - 1; i >= 0; i-- {
		if a := rec.msgs[i].Aux; a != nil {
			return *a
		}
	}
	t.Fatal("no aux message")
	return PushResult{}
}

// checkPushedManifest fetches what the push stored: Docker schema2, gzip
// layers, indented as docker writes it.
func checkPushedManifest(t *testing.T, ref string, res PushResult) {
	t.Helper()
	named, _ := reference.ParseNormalizedNamed(ref)
	desc, body, err := newRemote().Session(nil).FetchManifest(context.Background(), named, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != remote.MediaTypeDockerManifest || len(body) != res.Size || !strings.Contains(string(body), "\n   \"config\": {") {
		t.Fatalf("manifest %s (%d bytes):\n%s", desc.MediaType, len(body), body)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != remote.MediaTypeDockerConfig || len(m.Layers) == 0 || m.Layers[0].MediaType != remote.MediaTypeDockerLayer {
		t.Fatalf("manifest content: %s", body)
	}
}

func TestPushAllTagsAndErrors(t *testing.T) {
	reg := newTestRegistry(t)
	s := newPullService(t, drivers[1], newRemote())
	ctx := context.Background()
	repo := reg.host + "/berth-test/tags"
	id := importBusybox(t, s, repo+":v1")
	for _, ref := range []string{repo + ":v2", reg.host + "/berth-test/tags-other:v3"} {
		if err := s.TagImage(ctx, id, ref); err != nil {
			t.Fatal(err)
		}
	}
	var rec recorder
	if err := s.PushImage(ctx, repo, PushOptions{AllTags: true}, rec.add); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, l := range rec.lines() {
		if strings.Contains(l, ": digest: ") {
			digests = append(digests, l[:strings.Index(l, ":")])
		}
	}
	if !slices.Equal(digests, []string{"v1", "v2"}) {
		t.Fatalf("pushed tags %v:\n%s", digests, strings.Join(rec.lines(), "\n"))
	}
	tags, err := newRemote().Session(nil).Tags(ctx, mustNamed(t, repo))
	if err != nil || !slices.Equal(tags, []string{"v1", "v2"}) {
		t.Fatalf("registry tags %v %v", tags, err)
	}

	cases := []struct {
		name, ref string
		opts      PushOptions
		kind      func(error) bool
		want      string
	}{
		{"unknown tag", repo + ":nope", PushOptions{}, errdefs.NotFound, "An image does not exist locally with the tag: " + repo + ":nope"},
		{"unknown repository", reg.host + "/berth-test/none", PushOptions{AllTags: true}, errdefs.NotFound, "An image does not exist locally with the tag: " + reg.host + "/berth-test/none"},
		{"digest", repo + "@sha256:" + strings.Repeat("a", 64), PushOptions{}, errdefs.InvalidArgument, "cannot push a digest reference"},
		{"bad name", reg.host + "/berth-test/Valid", PushOptions{}, errdefs.InvalidArgument, "invalid reference format"},
	}
	for _, tc := range cases {
		err := s.PushImage(ctx, tc.ref, tc.opts, nil)
		if err == nil || !tc.kind(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
