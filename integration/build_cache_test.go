package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	reStepID  = regexp.MustCompile(`(?m)^ ---> ([0-9a-f]{12})$`)
	fixedTime = time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)
)

// TestBuildCache checks the classic builder's cache: an unchanged rebuild
// runs nothing, a changed COPY source reruns from that step on, --no-cache
// reruns everything, and intermediate images live and die with the image.
func TestBuildCache(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo first > /first\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copied\nCMD [\"cat\", \"/copied\"]\n",
		"app.txt":    "v1\n",
	})
	first := d.must("build", "-t", "cached:v1", dir)
	if strings.Contains(first, "Using cache") || strings.Count(first, "---> Running in") != 2 {
		t.Fatalf("first build:\n%s", first)
	}
	again := d.must("build", "-t", "cached:v1", dir)
	if strings.Contains(again, "Running in") || strings.Count(again, " ---> Using cache\n") != 4 {
		t.Fatalf("unchanged rebuild ran steps:\n%s", again)
	}
	if ids(first)[4] != ids(again)[4] {
		t.Fatalf("unchanged rebuild made another image: %v vs %v", ids(first), ids(again))
	}
	// Only the mtime changes: the content digest is the same, so is the image.
	os.Chtimes(filepath.Join(dir, "app.txt"), fixedTime, fixedTime)
	if out := d.must("build", dir); strings.Contains(out, "Running in") {
		t.Fatalf("a touched but unchanged file reran steps:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := d.must("build", "-t", "cached:v2", dir)
	want := []string{"Step 2/5 : RUN echo first > /first\n ---> Using cache", "Step 3/5 : COPY app.txt /app.txt\n ---> " + ids(changed)[2]}
	for _, w := range want {
		if !strings.Contains(changed, w) {
			t.Fatalf("rebuild after changing app.txt lacks %q:\n%s", w, changed)
		}
	}
	if strings.Count(changed, "Running in") != 1 {
		t.Fatalf("rebuild after changing app.txt:\n%s", changed)
	}
	if got := d.must("run", "--rm", "cached:v2"); got != "v2\n" {
		t.Fatalf("cached:v2 says %q", got)
	}
	if out := d.must("build", "--no-cache", dir); strings.Contains(out, "Using cache") {
		t.Fatalf("--no-cache used the cache:\n%s", out)
	}

	// Intermediate images show with -a only; rmi takes the unshared ones.
	all := d.must("images", "-a", "-q", "--no-trunc")
	for _, id := range ids(first)[1:] {
		if !strings.Contains(all, id) {
			t.Errorf("intermediate image %s is not in images -a:\n%s", id, all)
		}
	}
	if plain := d.must("images", "-q"); strings.Count(plain, "\n") != 4 {
		t.Errorf("images without -a lists intermediates:\n%s", plain)
	}
	hist := d.must("history", "-q", "cached:v1")
	if strings.Contains(hist, "<missing>") {
		t.Errorf("history of a built image misses its steps:\n%s", hist)
	}
	// Every step's CREATED BY, newest first, as the classic builder
	// writes them (the COPY line names the digest of what it copied).
	createdBy := strings.Split(d.must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "cached:v1"), "\n")
	wantBy := []string{`/bin/sh -c #(nop)  CMD ["cat" "/copied"]`, "/bin/sh -c cat /app.txt > /copied",
		"/bin/sh -c #(nop) COPY file:", "/bin/sh -c echo first > /first"}
	for i, w := range wantBy {
		if i >= len(createdBy) || !strings.HasPrefix(createdBy[i], w) {
			t.Errorf("history line %d is not %q:\n%s", i, w, strings.Join(createdBy, "\n"))
		}
	}
	if !regexp.MustCompile(`^/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /app.txt $`).MatchString(createdBy[2]) {
		t.Errorf("COPY's history line %q", createdBy[2])
	}
	// -q prints the ID alone, --iidfile writes it.
	iid := filepath.Join(t.TempDir(), "iid")
	q := d.must("build", "-q", "--iidfile", iid, "-t", "cached:q", "-t", "cached:q2", dir)
	id := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "cached:q"))
	if id2 := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "cached:q2")); id2 != id {
		t.Errorf("-t twice: cached:q is %s, cached:q2 %s", id, id2)
	}
	if written, _ := os.ReadFile(iid); q != id+"\n" || string(written) != id {
		t.Errorf("build -q printed %q, --iidfile wrote %q, the image is %s", q, written, id)
	}
	d.must("rmi", "cached:v1")
	all = d.must("images", "-a", "-q", "--no-trunc")
	if !strings.Contains(all, ids(first)[1]) {
		t.Errorf("rmi cached:v1 removed the RUN step that cached:v2 still uses")
	}
	if strings.Contains(all, ids(first)[4]) || strings.Contains(all, ids(first)[3]) {
		t.Errorf("rmi cached:v1 left its own intermediate images:\n%s", all)
	}
}

// stagesContext has two stages that each wait, in a shared cache mount,
// for the other's mark: the build finishes only if they run at once. A
// third stage is never needed and would fail.
func stagesContext(id string) map[string]string {
	wait := func(me, other string) string {
		return "RUN --mount=type=cache,target=/sync,id=sync-" + id + " touch /sync/" + me +
			" && for i in $(seq 600); do [ -e /sync/" + other + " ] && exit 0; sleep 0.1; done; exit 1\n"
	}
	return map[string]string{"Dockerfile": "FROM busybox AS a\n" + wait("a", "b") + "RUN echo a > /a\n" +
		"FROM busybox AS b\n" + wait("b", "a") + "RUN echo b > /b\n" +
		"FROM busybox AS unused\nRUN echo never; exit 1\n" +
		"FROM a AS final\nCOPY --from=b /b /b\nCOPY --from=1 /b /b1\nCOPY --from=busybox:latest /bin/busybox /bb\nRUN cat /a /b /b1\n"}
}

// mountsContext uses every RUN --mount type the builder supports.
func mountsContext() map[string]string {
	return map[string]string{
		"Dockerfile": "FROM busybox AS tools\nRUN echo tool > /tool\n" +
			"FROM busybox\n" +
			"RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log\n" +
			"RUN --mount=type=bind,source=src,target=/src cat /src/input && ! touch /src/ro 2>/dev/null\n" +
			"RUN --mount=type=bind,source=src,target=/src,rw touch /src/scratch && ls /src\n" +
			"RUN --mount=type=bind,from=tools,source=/tool,target=/mnt/tool cat /mnt/tool\n" +
			"RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && cat /scratch/x\n" +
			"RUN test ! -e /cache/log && test ! -e /src && test ! -e /mnt/tool && test ! -e /scratch\n",
		"src/input": "from the context\n",
	}
}

// ids are the image IDs a build printed after each step, in order.
func ids(out string) []string {
	var s []string
	for _, m := range reStepID.FindAllStringSubmatch(out, -1) {
		s = append(s, m[1])
	}
	return s
}

// TestBuildStages checks multi-stage builds: COPY --from a stage by name
// and by index and from an image, --target, unneeded stages skipped, and
// independent stages run at the same time.
func TestBuildStages(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := writeContext(t, stagesContext(t.Name()))
	out := d.must("build", "-t", "staged:v1", dir)
	if strings.Contains(out, "never") || strings.Contains(out, "FROM busybox AS unused") {
		t.Errorf("the unused stage ran:\n%s", out)
	}
	if !strings.Contains(out, "a\nb\nb\n") {
		t.Errorf("the final stage did not see both stages' files:\n%s", out)
	}
	// Stage a's steps print before b's although they ran at once.
	if ia, ib := strings.Index(out, "FROM busybox AS a"), strings.Index(out, "FROM busybox AS b"); ia < 0 || ib < ia ||
		strings.Contains(out[ia:ib], "AS b") {
		t.Errorf("stage output is not in Dockerfile order:\n%s", out)
	}
	out = d.must("build", "--target", "b", "-t", "staged:b", dir)
	// Steps are numbered as Docker does: the Dockerfile up to the target.
	if strings.Contains(out, "AS a") || strings.Contains(out, "AS final") || !strings.Contains(out, "Step 4/6 : FROM busybox AS b\n") {
		t.Errorf("--target b built other stages:\n%s", out)
	}
	if got := d.must("run", "--rm", "staged:b", "cat", "/b"); got != "b\n" {
		t.Errorf("--target b image: %q", got)
	}
}

// TestBuildMounts checks RUN --mount: a cache that outlives builds, binds
// from the context and from another stage, and tmpfs.
func TestBuildMounts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := writeContext(t, mountsContext())
	first := d.must("build", "--no-cache", dir)
	for _, want := range []string{"\n1\n", "from the context\n", "input\nscratch\n", "tool\n", "x\n"} {
		if !strings.Contains(first, want) {
			t.Errorf("first build lacks %q:\n%s", want, first)
		}
	}
	second := d.must("build", "--no-cache", dir)
	if !strings.Contains(second, "\n2\n") {
		t.Errorf("the cache mount did not keep its file:\n%s", second)
	}
	if _, err := os.Stat(filepath.Join(dir, "src", "scratch")); err == nil {
		t.Error("a writable bind mount wrote into the context")
	}
}
