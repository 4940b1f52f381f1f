package cli

import (
	"strings"
	"testing"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
)

func TestFormatHelpers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	tests := []struct {
		name, got, want string
	}{
		{"shortID sha256", shortID(busyboxID), "341b53579211"},
		{"shortID bare", shortID("abc"), "abc"},
		{"shortID missing", shortID("<missing>"), "<missing>"},
		{"size zero", humanSize(0), "0B"},
		{"size small", humanSize(6), "6B"},
		{"size MB", humanSize(2_050_000), "2.05MB"},
		{"size three digits", humanSize(392_123_456), "392MB"},
		{"size kB", humanSize(1_234), "1.23kB"},
		{"size4", humanSize4(394_173_456), "394.2MB"},
		{"since sub-second", since(now, now.Unix()), "Less than a second ago"},
		{"since minutes", since(now, now.Add(-12*time.Minute).Unix()), "12 minutes ago"},
		{"since hour", since(now, now.Add(-70*time.Minute).Unix()), "About an hour ago"},
		{"since days", since(now, now.Add(-72*time.Hour).Unix()), "3 days ago"},
		{"ellipsis short", ellipsis("abc", 45), "abc"},
		{"ellipsis exact", ellipsis(strings.Repeat("x", 45), 45), strings.Repeat("x", 45)},
		{"ellipsis long", ellipsis(strings.Repeat("x", 46), 45), strings.Repeat("x", 44) + "…"},
		{"ellipsis runes", ellipsis("ééééé", 3), "éé…"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestResolveFormat(t *testing.T) {
	t.Parallel()
	const def = "table {{.A}}\t{{.B}}"
	tests := []struct {
		in   string
		want listFormat
	}{
		{"", listFormat{table: true, template: "{{.A}}\t{{.B}}"}},
		{"table", listFormat{table: true, template: "{{.A}}\t{{.B}}"}},
		{"json", listFormat{template: "{{json .}}"}},
		{"table {{.B}}", listFormat{table: true, template: "{{.B}}"}},
		{"{{.A}}", listFormat{template: "{{.A}}"}},
	}
	for _, tt := range tests {
		if got := resolveFormat(tt.in, def); got != tt.want {
			t.Errorf("resolveFormat(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestWriteList(t *testing.T) {
	t.Parallel()
	type row struct{ Name, Size string }
	rows := []row{{"a", "1B"}, {"<long-name>", "20MB"}}
	headers := map[string]string{"Name": "NAME", "Size": "SIZE"}
	tests := []struct {
		format, want string
	}{
		{"table {{.Name}}\t{{.Size}}", "NAME          SIZE\na             1B\n<long-name>   20MB\n"},
		{`table {{.Size}}\t{{.Name}}`, "SIZE      NAME\n1B        a\n20MB      <long-name>\n"},
		{"{{.Name}}={{.Size}}", "a=1B\n<long-name>=20MB\n"},
		{"json", `{"Name":"a","Size":"1B"}` + "\n" + `{"Name":"\u003clong-name\u003e","Size":"20MB"}` + "\n"},
		{"{{upper .Name}} {{truncate .Size 1}} {{join (split .Size \"M\") \"-\"}}", "A 1 1B\n<LONG-NAME> 2 20-B\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		if err := writeList(&b, resolveFormat(tt.format, ""), headers, rows); err != nil {
			t.Fatalf("%q: %v", tt.format, err)
		}
		if b.String() != tt.want {
			t.Errorf("format %q:\n%q\nwant\n%q", tt.format, b.String(), tt.want)
		}
	}
	if err := writeList(&strings.Builder{}, resolveFormat("{{.Nope", ""), headers, rows); err == nil ||
		!strings.HasPrefix(err.Error(), "template parsing error: ") {
		t.Errorf("bad template error = %v", err)
	}
}

func TestImageRows(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		img     imagetypes.Summary
		digests bool
		want    []string // repository tag digest
	}{
		{"dangling", imagetypes.Summary{}, false, []string{"<none> <none> <none>"}},
		{"legacy dangling", imagetypes.Summary{RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"}}, false, []string{"<none> <none> <none>"}},
		{"tags in daemon order", imagetypes.Summary{RepoTags: []string{"docker.io/library/b:1", "a:2", "b:3"}}, false,
			[]string{"b 1 <none>", "b 3 <none>", "a 2 <none>"}},
		{"digest per tag", imagetypes.Summary{RepoTags: []string{"r/x:1"}, RepoDigests: []string{"r/x@" + digest}}, true,
			[]string{"r/x 1 " + digest}},
		{"digest hidden", imagetypes.Summary{RepoTags: []string{"r/x:1"}, RepoDigests: []string{"r/x@" + digest}}, false,
			[]string{"r/x 1 <none>"}},
		{"digest only repo", imagetypes.Summary{RepoTags: []string{"a:1"}, RepoDigests: []string{"r/y@" + digest}}, true,
			[]string{"a 1 <none>", "r/y <none> " + digest}},
		{"digest only repo without --digests", imagetypes.Summary{RepoTags: []string{"a:1"}, RepoDigests: []string{"r/y@" + digest}}, false,
			[]string{"a 1 <none>", "r/y <none> "}},
	}
	for _, tt := range tests {
		tt.img.ID = busyboxID
		var got []string
		for _, r := range imageRows(now, tt.img, tt.digests, true) {
			got = append(got, r.Repository+" "+r.Tag+" "+r.Digest)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: rows %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"", "//", false},
		{"linux", "linux//", false},
		{"linux/amd64", "linux/amd64/", false},
		{"Linux/ARM64/v8", "linux/arm64/v8", false},
		{"linux//v8", "", true},
		{"a/b/c/d", "", true},
	}
	for _, tt := range tests {
		p, err := parsePlatform(tt.in)
		if (err != nil) != tt.wantErr {
			t.Fatalf("parsePlatform(%q) err = %v", tt.in, err)
		}
		if got := p.OS + "/" + p.Architecture + "/" + p.Variant; err == nil && got != tt.want {
			t.Errorf("parsePlatform(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFilterOpt(t *testing.T) {
	t.Parallel()
	f := filterOpt{}
	for _, s := range []string{"dangling=true", "Label=a=b", "label=c"} {
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.String(); got != "dangling=true label=a=b label=c" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"nofilter", "=x"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestHistoryRows(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	long := "/bin/sh -c apt-get update &&\tapt-get install -y curl ca-certificates"
	items := []imagetypes.HistoryResponseItem{
		{ID: busyboxID, Created: now.Add(-2 * time.Hour).Unix(), CreatedBy: long, Size: 1_500_000, Comment: "c"},
		{ID: "<missing>", Created: 0, Size: 0},
	}
	tests := []struct {
		name         string
		human, trunc bool
		want         []historyRow
	}{
		{"human truncated", true, true, []historyRow{
			{ID: "341b53579211", CreatedSince: "2 hours ago", CreatedAt: time.Unix(now.Add(-2*time.Hour).Unix(), 0).Format(time.RFC3339),
				CreatedBy: "/bin/sh -c apt-get update && apt-get install…", Size: "1.5MB", Comment: "c"},
			{ID: "<missing>", CreatedSince: "N/A", CreatedAt: time.Unix(0, 0).Format(time.RFC3339), Size: "0B"},
		}},
		{"raw full", false, false, []historyRow{
			{ID: busyboxID, CreatedSince: time.Unix(now.Add(-2*time.Hour).Unix(), 0).Format(time.RFC3339), CreatedAt: time.Unix(now.Add(-2*time.Hour).Unix(), 0).Format(time.RFC3339),
				CreatedBy: strings.ReplaceAll(long, "\t", " "), Size: "1500000", Comment: "c"},
			{ID: "<missing>", CreatedSince: time.Unix(0, 0).Format(time.RFC3339), CreatedAt: time.Unix(0, 0).Format(time.RFC3339), Size: "0"},
		}},
	}
	for _, tt := range tests {
		got := historyRows(now, items, tt.human, tt.trunc)
		for i := range tt.want {
			if got[i] != tt.want[i] {
				t.Errorf("%s row %d:\n%+v\nwant\n%+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}
