package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
)

const pullStream = `{"status":"Pulling from berth-bh/commit","id":"v1"}
{"status":"Already exists","progressDetail":{},"id":"502e063377f1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"b93d71c93f73"}
{"status":"Downloading","progressDetail":{"current":1048576,"total":4194304},"id":"b93d71c93f73"}
{"status":"Downloading","progressDetail":{"current":4194304,"total":4194304},"id":"b93d71c93f73"}
{"status":"Verifying Checksum","progressDetail":{},"id":"b93d71c93f73"}
{"status":"Download complete","progressDetail":{},"id":"b93d71c93f73"}
{"status":"Extracting","progressDetail":{"current":4194304,"total":4194304},"id":"b93d71c93f73"}
{"status":"Pull complete","progressDetail":{},"id":"b93d71c93f73"}
{"status":"Digest: sha256:6fc73e36"}
{"status":"Status: Downloaded newer image for 127.0.0.1:5000/berth-bh/commit:v1"}
`

func TestProgressDisplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stream   string
		terminal bool
		width    int
		want     string
		err      string
		aux      int
	}{
		{
			name: "pipe", stream: pullStream,
			want: `v1: Pulling from berth-bh/commit
502e063377f1: Already exists
b93d71c93f73: Pulling fs layer
b93d71c93f73: Verifying Checksum
b93d71c93f73: Download complete
b93d71c93f73: Pull complete
Digest: sha256:6fc73e36
Status: Downloaded newer image for 127.0.0.1:5000/berth-bh/commit:v1
`,
		},
		{
			// Each layer keeps its line: a new id opens one ("\n"), an
			// update moves up to it, clears it, rewrites it, moves back.
			name: "terminal", stream: strings.Join(strings.Split(pullStream, "\n")[:5], "\n"), terminal: true, width: 120,
			want: "v1: Pulling from berth-bh/commit\n" +
				"\n\x1b[1A\x1b[2K\r502e063377f1: Already exists \r\x1b[1B" +
				"\n\x1b[1A\x1b[2K\rb93d71c93f73: Pulling fs layer \r\x1b[1B" +
				"\x1b[1A\x1b[2K\rb93d71c93f73: Downloading [============>                                      ]  1.049MB/4.194MB\r\x1b[1B" +
				"\x1b[1A\x1b[2K\rb93d71c93f73: Downloading [==================================================>]  4.194MB/4.194MB\r\x1b[1B",
		},
		{
			name: "narrow terminal: counts only", terminal: true, width: 80,
			stream: `{"status":"Downloading","progressDetail":{"current":1048576,"total":4194304},"id":"b93d71c93f73"}`,
			want:   "\n\x1b[1A\x1b[2K\rb93d71c93f73: Downloading  1.049MB/4.194MB\r\x1b[1B",
		},
		{
			name: "error ends the stream",
			stream: `{"status":"Pulling fs layer","progressDetail":{},"id":"b93d71c93f73"}
{"errorDetail":{"message":"layer sha256:b93d: content digest does not match"},"error":"layer sha256:b93d: content digest does not match"}
{"status":"never shown"}`,
			want: "b93d71c93f73: Pulling fs layer\n", err: "layer sha256:b93d: content digest does not match",
		},
		{
			name:   "legacy error string",
			stream: `{"error":"old daemon failure"}`, err: "old daemon failure",
		},
		{
			name: "aux is not printed",
			stream: `{"status":"v1: digest: sha256:6fc7 size: 735"}
{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:6fc7","Size":735}}`,
			want: "v1: digest: sha256:6fc7 size: 735\n", aux: 1,
		},
		{name: "garbage", stream: "{not json", err: "read daemon stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			aux := 0
			d := &progressDisplay{out: &out, terminal: tt.terminal, width: tt.width, now: time.Now,
				aux: func(json.RawMessage) { aux++ }}
			err := d.run(strings.NewReader(tt.stream))
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if out.String() != tt.want {
				t.Errorf("output:\n%q\nwant:\n%q", out.String(), tt.want)
			}
			if aux != tt.aux {
				t.Errorf("aux messages %d, want %d", aux, tt.aux)
			}
		})
	}
}

func TestProgressBarTimeLeft(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	d := &progressDisplay{width: 120, now: func() time.Time { return now }}
	got := d.bar(jsonProgress(250, 1000, 990))
	want := "[============>                                      ]     250B/1kB 30s"
	if got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func jsonProgress(current, total, start int64) jsonstream.Progress {
	return jsonstream.Progress{Current: current, Total: total, Start: start}
}
