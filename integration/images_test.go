package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

func fields(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func TestImageCommands(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	id := d.importBusybox("busybox:latest")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("import printed %q", id)
	}
	short := id[7:19]

	rows := fields(d.must("images"))
	if strings.Join(rows[0], " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Fatalf("images header: %q", rows[0])
	}
	if rows[1][0] != "busybox" || rows[1][1] != "latest" || rows[1][2] != short {
		t.Fatalf("images row: %q", rows[1])
	}
	if got := strings.TrimSpace(d.must("images", "-q")); got != short {
		t.Fatalf("images -q: %q", got)
	}
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc")); got != id {
		t.Fatalf("images -q --no-trunc: %q", got)
	}
	if got := fields(d.must("images", "--digests"))[1]; got[2] != "<none>" {
		t.Fatalf("images --digests: %q", got)
	}
	if got := d.must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != "busybox:latest "+short+"\n" {
		t.Fatalf("images --format: %q", got)
	}

	d.must("tag", "busybox", "busybox:second")
	d.must("tag", short, "example.com/team/bb:v1")
	if got := len(fields(d.must("images"))); got != 4 {
		t.Fatalf("want 3 rows after tagging, got %d", got-1)
	}
	r := d.berth("rmi", short)
	if r.Code != 1 || !strings.Contains(r.Stderr, "Error response from daemon: conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories") {
		t.Fatalf("rmi by id with tags in two repos: %s", r)
	}
	if got := d.must("rmi", "busybox:second"); got != "Untagged: busybox:second\n" {
		t.Fatalf("rmi one tag: %q", got)
	}
	if got := d.must("rmi", "example.com/team/bb:v1"); got != "Untagged: example.com/team/bb:v1\n" {
		t.Fatalf("rmi other tag: %q", got)
	}

	hist := fields(d.must("history", "busybox"))
	if strings.Join(hist[0], " ") != "IMAGE CREATED CREATED BY SIZE COMMENT" || hist[1][0] != short {
		t.Fatalf("history: %q", hist)
	}
	if !strings.Contains(d.must("history", "busybox"), "Imported from -") {
		t.Fatal("history lacks the import comment")
	}
	abs := d.must("history", "-H=false", "--format", "{{.CreatedAt}} {{.Size}}", "busybox")
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-Z][\d:]* \d+\n$`).MatchString(abs) {
		t.Fatalf("history -H=false: %q", abs)
	}

	var ins []map[string]any
	if err := json.Unmarshal([]byte(d.must("image", "inspect", "busybox")), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	if ins[0]["Id"] != id || ins[0]["Os"] != "linux" {
		t.Fatalf("inspect: %v", ins[0])
	}
	if got := d.must("image", "inspect", "-f", "{{.Config.Cmd}} {{len .RootFS.Layers}}", "busybox"); got != "[sh] 1\n" {
		t.Fatalf("inspect -f: %q", got)
	}
	if !strings.Contains(d.must("system", "df"), "Images") {
		t.Fatal("system df lacks Images")
	}
	if got := strings.TrimSpace(d.must("info", "--format", "{{.Images}}")); got != "1" {
		t.Fatalf("info images: %q", got)
	}
}

func TestImageBadInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	before := d.must("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}")
	cases := []struct {
		args  []string
		stdin []byte
		want  string
	}{
		{[]string{"image", "inspect", "nope"}, nil, "No such image: nope"},
		{[]string{"rmi", "nope:1"}, nil, "Error response from daemon: No such image: nope:1"},
		{[]string{"tag", "nope", "x:y"}, nil, "Error response from daemon: No such image: nope:latest"},
		{[]string{"tag", "busybox", "Bad/Name"}, nil, "invalid reference format"},
		{[]string{"history", "nope"}, nil, "No such image: nope"},
		{[]string{"import", "-c", "FOO bar", "-", "x:y"}, []byte{}, "unknown instruction: FOO"},
		{[]string{"import", "-c", "RUN true", "-", "x:y"}, []byte{}, "RUN is not a valid change command"},
		{[]string{"import", "-", "x:y"}, bytes.Repeat([]byte("not a tar"), 300), "Error response from daemon"},
		{[]string{"import", "-", "x:y"}, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad}, "Error response from daemon"},
		{[]string{"import", "-", "UPPER:case"}, []byte{}, "invalid reference format"},
	}
	for _, tc := range cases {
		r := d.berthIn(bytes.NewReader(tc.stdin), tc.args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("berth %v: want exit 1 and %q, got %s", tc.args, tc.want, r)
		}
	}
	if after := d.must("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}"); after != before {
		t.Fatalf("bad input changed the store:\nbefore %s\nafter %s", before, after)
	}
	// Nothing left in the content store's ingest area either.
	if ents, _ := os.ReadDir(d.DataRoot + "/content/ingest"); len(ents) != 0 {
		t.Fatalf("stray ingests: %d", len(ents))
	}
}

func TestDanglingAndPrune(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.importBusybox("busybox:latest") // the first image loses its tag
	rows := fields(d.must("images"))
	if len(rows) != 3 || rows[2][0] != "<none>" || rows[2][1] != "<none>" {
		t.Fatalf("dangling row: %q", rows)
	}
	if got := len(fields(d.must("images", "--filter", "dangling=true"))); got != 2 {
		t.Fatalf("dangling filter rows: %d", got)
	}
	out := d.must("image", "prune", "-f")
	if !strings.Contains(out, "Deleted Images:") || !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("prune: %q", out)
	}
	if got := len(fields(d.must("images"))); got != 2 {
		t.Fatalf("rows after prune: %d", got)
	}
}
