package cli

import (
	"strings"
	"testing"
)

func TestImageCommands(t *testing.T) {
	t.Parallel()
	runCases(t, []cliCase{
		{name: "images", args: []string{"images"}, wantOut: `REPOSITORY                     TAG       IMAGE ID       CREATED             SIZE
127.0.0.1:5000/berth/busybox   latest    341b53579211   12 minutes ago      2.05MB
busybox                        latest    341b53579211   12 minutes ago      2.05MB
<none>                         <none>    cc63b1657c52   About an hour ago   6B
berth-multi                    latest    fa73c27da301   3 days ago          392MB
`},
		{name: "image ls digests", args: []string{"image", "ls", "--digests"}, wantOut: `REPOSITORY                     TAG       DIGEST                                                                    IMAGE ID       CREATED             SIZE
127.0.0.1:5000/berth/busybox   latest    ` + pushDigest + `   341b53579211   12 minutes ago      2.05MB
busybox                        latest    <none>                                                                    341b53579211   12 minutes ago      2.05MB
<none>                         <none>    <none>                                                                    cc63b1657c52   About an hour ago   6B
berth-multi                    latest    <none>                                                                    fa73c27da301   3 days ago          392MB
`},
		{name: "quiet repeats per tag", args: []string{"images", "-q"}, wantOut: "341b53579211\n341b53579211\ncc63b1657c52\nfa73c27da301\n"},
		{name: "quiet no-trunc", args: []string{"images", "-q", "--no-trunc", "-f", "dangling=true"}, wantOut: danglingID + "\n"},
		{name: "reference argument", args: []string{"images", "berth-*"}, wantOut: "REPOSITORY    TAG       IMAGE ID       CREATED      SIZE\nberth-multi   latest    fa73c27da301   3 days ago   392MB\n"},
		{name: "label filter", args: []string{"images", "--filter", "label=tier=app", "--format", "{{.Repository}}:{{.Tag}}"}, wantOut: "berth-multi:latest\n"},
		{name: "table format", args: []string{"images", "--format", `table {{.ID}}\t{{.Repository}}`, "--filter", "reference=busybox"},
			wantOut: "IMAGE ID       REPOSITORY\n341b53579211   busybox\n"},
		{name: "json format", args: []string{"images", "--format", "json", "-f", "dangling=true"},
			wantOut: `{"Containers":"N/A","CreatedAt":"$DANGLING_CREATED_AT","CreatedSince":"About an hour ago","Digest":"\u003cnone\u003e","ID":"cc63b1657c52","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"6B","Tag":"\u003cnone\u003e","UniqueSize":"N/A","VirtualSize":"6B"}` + "\n"},
		{name: "bad template", args: []string{"images", "--format", "{{.Nope}}"}, code: 1,
			wantErr: "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type cli.imageRow\n"},
		{name: "too many args", args: []string{"images", "a", "b"}, code: 1,
			wantErr: "berth: 'berth images' requires at most 1 argument\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{name: "unknown flag", args: []string{"images", "--badflag"}, code: 125,
			wantErr: "unknown flag: --badflag\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{name: "bad filter", args: []string{"image", "ls", "--filter", "foo"}, code: 125,
			wantErr: "invalid argument \"foo\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nUsage:  berth image ls [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth image ls --help' for more information\n"},
		{name: "daemon rejects filter", args: []string{"images", "--filter", "foo=bar"}, code: 1,
			wantErr: "Error response from daemon: filter \"foo\": invalid argument\n"},
		{name: "history", args: []string{"history", "berth-multi"}, wantOut: `IMAGE          CREATED          CREATED BY                                      SIZE      COMMENT
fa73c27da301   12 minutes ago   /bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "ls -…   0B        
<missing>      12 minutes ago   /bin/sh -c head -c 50331648 /dev/urandom > /…   50.3MB    
<missing>      12 minutes ago                                                   116MB     Imported from -
`},
		{name: "history quiet", args: []string{"image", "history", "-q", "berth-multi"}, wantOut: "fa73c27da301\n<missing>\n<missing>\n"},
		{name: "history missing", args: []string{"history", "nope"}, code: 1, wantErr: "Error response from daemon: No such image: nope\n"},
		{name: "history no args", args: []string{"history"}, code: 1,
			wantErr: "berth: 'berth history' requires 1 argument\n\nUsage:  berth history [OPTIONS] IMAGE\n\nRun 'berth history --help' for more information\n"},
		{name: "inspect format", args: []string{"inspect", "-f", "{{.Architecture}} {{.Id}} {{.Size}}", "busybox"}, wantOut: "amd64 " + busyboxID + " 2050000\n"},
		{name: "inspect typed", args: []string{"inspect", "--type", "image", "-f", "{{json .RootFS}}", "busybox"}, wantOut: "{}\n"},
		{name: "inspect typed missing", args: []string{"inspect", "--type", "image", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error response from daemon: No such image: nope\n"},
		{name: "inspect bad type", args: []string{"inspect", "--type", "foo", "busybox"}, code: 1, wantErr: "unknown type: \"foo\": must be one of \"container\", \"image\"\n"},
		{name: "inspect missing key", args: []string{"image", "inspect", "-f", "{{.Nope}}", "busybox"}, code: 1, wantOut: "\n",
			wantErr: "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\"\n"},
		{name: "inspect missing object", args: []string{"inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error: No such object: nope\n"},
		{name: "image inspect missing", args: []string{"image", "inspect", "nope"}, code: 1, wantOut: "[]\n", wantErr: "Error response from daemon: No such image: nope\n"},
		{name: "rmi needs force", args: []string{"rmi", "341b"}, code: 1,
			wantErr: "Error response from daemon: conflict: unable to delete 341b53579211 (must be forced) - image is referenced in multiple repositories\n"},
		{name: "rmi partial", args: []string{"rmi", "nope", "busybox", "berth-multi"}, code: 1,
			wantOut: "Untagged: busybox:latest\nUntagged: berth-multi:latest\nDeleted: " + multiID + "\n",
			wantErr: "Error response from daemon: No such image: nope\n"},
		{name: "rmi force", args: []string{"image", "rm", "-f", "341b"},
			wantOut: "Untagged: 127.0.0.1:5000/berth/busybox:latest\nUntagged: busybox:latest\nDeleted: " + busyboxID + "\n"},
		{name: "rmi no args", args: []string{"rmi"}, code: 1,
			wantErr: "berth: 'berth rmi' requires at least 1 argument\n\nUsage:  berth rmi [OPTIONS] IMAGE [IMAGE...]\n\nSee 'berth rmi --help' for more information\n"},
		{name: "tag bad target", args: []string{"tag", "busybox", "BAD:x"}, code: 1,
			wantErr: "Error parsing reference: \"BAD:x\" is not a valid repository/tag: invalid reference format: repository name (library/BAD) must be lowercase\n"},
		{name: "prune declined", args: []string{"image", "prune"}, stdin: "n\n",
			wantOut: "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "},
		{name: "prune forced", args: []string{"image", "prune", "-f"},
			wantOut: "Deleted Images:\ndeleted: " + danglingID + "\n\nTotal reclaimed space: 6B\n"},
		{name: "prune all confirmed", args: []string{"image", "prune", "-a", "--filter", "label=tier=app"}, stdin: "y\n",
			wantOut: "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] " +
				"Deleted Images:\nuntagged: berth-multi:latest\ndeleted: " + multiID + "\n\nTotal reclaimed space: 392.1MB\n"},
		{name: "prune args", args: []string{"image", "prune", "x"}, code: 1,
			wantErr: "berth: 'berth image prune' accepts no arguments\n\nUsage:  berth image prune [OPTIONS]\n\nRun 'berth image prune --help' for more information\n"},
	})
}

func TestTagThenImages(t *testing.T) {
	t.Parallel()
	host, _ := startDaemon(t)
	if out, errOut, code := run(t, host, nil, "tag", "busybox", "example.com/ns/copy:v1"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("tag: %q %q %d", out, errOut, code)
	}
	out, _, _ := run(t, host, nil, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "example.com/ns/copy")
	if out != "example.com/ns/copy:v1 341b53579211\n" {
		t.Fatalf("images after tag = %q", out)
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	host, imgs := startDaemon(t)
	tarPath := t.TempDir() + "/rootfs.tar"
	writeFile(t, tarPath, "not really a tar")
	tests := []struct {
		args  []string
		stdin string
	}{
		{args: []string{"import", tarPath, "imported:v1"}},
		{args: []string{"image", "import", "-c", `CMD ["sh"]`, "--change", "ENV A=b", "-m", "hello", "--platform", "linux/amd64", "-", "imported:v2"}, stdin: "other bytes"},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, host, strings.NewReader(tt.stdin), tt.args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "sha256:") || len(out) != len("sha256:")+64+1 {
			t.Fatalf("%v: %q %q %d", tt.args, out, errOut, code)
		}
	}
	got := imgs.Imports[1]
	if got.Ref != "imported:v2" || got.Message != "hello" || got.Platform != "linux/amd64" || strings.Join(got.Changes, "|") != `CMD ["sh"]|ENV A=b` {
		t.Errorf("import options = %+v", got)
	}
	out, _, _ := run(t, host, nil, "history", "--format", "{{.Comment}}", "imported:v1")
	if out != "Imported from -\n" {
		t.Errorf("history comment = %q", out)
	}
	_, errOut, code := run(t, host, strings.NewReader(""), "import", "-")
	if code != 1 || errOut != "Error response from daemon: import: empty archive\n" {
		t.Errorf("empty import: %q %d", errOut, code)
	}
	_, errOut, code = run(t, host, nil, "import", "/nonexistent/rootfs.tar")
	if code != 1 || errOut != "open /nonexistent/rootfs.tar: no such file or directory\n" {
		t.Errorf("missing file: %q %d", errOut, code)
	}
}
