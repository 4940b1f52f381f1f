package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// frames splits a multiplexed stream into "<stream>:<payload>" strings.
func frames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("short frame header %q", b)
		}
		n := int(binary.BigEndian.Uint32(b[4:8]))
		out = append(out, string(rune('0'+b[0]))+":"+string(b[8:8+n]))
		b = b[8+n:]
	}
	return out
}

func (e *containerEnv) runToExit(t *testing.T, cfg container.Config) string {
	t.Helper()
	id := e.create(t, "", cfg, nil)
	status := e.wait(t, id, container.WaitConditionNextExit)
	if _, err := e.client.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	<-status
	return id
}

func TestLogsFraming(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.runToExit(t, container.Config{Cmd: []string{"sh", "-c", "echo one; echo two >&2; echo three"}})
	tests := []struct {
		opts client.ContainerLogsOptions
		want []string
	}{
		{client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}, []string{"1:one\n", "2:two\n", "1:three\n"}},
		{client.ContainerLogsOptions{ShowStdout: true}, []string{"1:one\n", "1:three\n"}},
		{client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "1"}, []string{"1:three\n"}},
		{client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "0"}, nil},
		{client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Until: "1970-01-02T00:00:00Z"}, nil},
		{client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Since: "10m"}, []string{"1:one\n", "2:two\n", "1:three\n"}},
	}
	for _, tt := range tests {
		rc, err := env.client.ContainerLogs(ctx, id, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := frames(t, b); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%+v: frames %q, want %q", tt.opts, got, tt.want)
		}
	}
	rc, err := env.client.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var stdout bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n$`)
	if !stamp.MatchString(stdout.String()) {
		t.Errorf("timestamped log %q", stdout.String())
	}
}

// TestLogsFollowTTY follows a tty container: raw bytes, ending when the
// container exits.
func TestLogsFollowTTY(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "", container.Config{Cmd: []string{"cat"}, Tty: true, OpenStdin: true, StdinOnce: true}, nil)
	att, err := env.client.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := env.client.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := att.Conn.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "a\r\n" {
		t.Fatalf("first followed bytes %q, %v", buf, err)
	}
	if _, err := att.Conn.Write([]byte("b\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "b\r\n" {
		t.Fatalf("second followed bytes %q, %v", buf, err)
	}
	if _, err := env.client.ContainerKill(ctx, id, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || len(rest) != 0 {
		t.Errorf("the followed log after the exit: %q, %v; want its end", rest, err)
	}
}

func TestEventsStream(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := time.Now()
	first := env.runToExit(t, container.Config{Cmd: []string{"true"}})
	res := env.client.Events(ctx, client.EventsListOptions{
		Since:   before.Add(-time.Second).Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("type", "container").Add("event", "create", "die"),
	})
	second := env.create(t, "late", container.Config{Cmd: []string{"true"}}, nil)
	var got []string
	for len(got) < 3 {
		select {
		case m := <-res.Messages:
			got = append(got, string(m.Action)+" "+m.Actor.ID[:12])
		case err := <-res.Err:
			t.Fatalf("events: %v (after %q)", err, got)
		case <-time.After(5 * time.Second):
			t.Fatalf("events: timed out after %q", got)
		}
	}
	want := []string{"create " + first[:12], "die " + first[:12], "create " + second[:12]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
	// An until in the past ends the stream after the recorded events;
	// API 1.51 still carries the legacy status/id/from fields.
	rec := do(t, env.h, "GET", "/v1.51/events?since=0&until="+unixNano(time.Now())+`&filters={"event":["die"]}`, nil)
	var m struct {
		Status, ID, From string
		events.Message
	}
	if err := json.NewDecoder(rec.Body).Decode(&m); err != nil || m.Status != "die" || m.ID != first || m.From != "busybox" || m.Actor.Attributes["exitCode"] != "0" {
		t.Errorf("legacy event %+v, %v", m, err)
	}
}

// unixNano is a time as clients send since and until.
func unixNano(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

func TestExec(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "", container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd            []string
		stdin          string
		stdout, stderr string
		code           int
	}{
		{cmd: []string{"sh", "-c", "echo hi; echo oops >&2; exit 5"}, stdout: "hi\n", stderr: "oops\n", code: 5},
		{cmd: []string{"cat"}, stdin: "piped\n", stdout: "piped\n"},
		{cmd: []string{"nope"}, stdout: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\r\n", code: 127},
		{cmd: []string{"/etc/passwd"}, stdout: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown\r\n", code: 126},
	}
	for _, tt := range tests {
		ex, err := env.client.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: tt.cmd, AttachStdin: tt.stdin != "", AttachStdout: true, AttachStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		att, err := env.client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tt.stdin != "" {
			att.Conn.Write([]byte(tt.stdin))
		}
		att.CloseWrite()
		var stdout, stderr bytes.Buffer
		_, err = stdcopy.StdCopy(&stdout, &stderr, att.Reader)
		att.Close()
		if err != nil {
			t.Fatal(err)
		}
		ins, err := env.client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if stdout.String() != tt.stdout || stderr.String() != tt.stderr || ins.ExitCode != tt.code || ins.Running {
			t.Errorf("exec %q: stdout %q stderr %q exit %d running %v", tt.cmd, stdout.String(), stderr.String(), ins.ExitCode, ins.Running)
		}
	}
	ex, err := env.client.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: []string{"sleep", "infinity"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if ins, err := env.client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil || !ins.Running || ins.PID == 0 {
		t.Errorf("detached exec: %+v, %v", ins, err)
	}
	if _, err := env.client.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err == nil || !strings.Contains(err.Error(), "has already run") {
		t.Errorf("second start: %v", err)
	}
}

func TestArchive(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, "box", container.Config{Cmd: []string{"true"}}, nil)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "data/hello.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
	tw.Write([]byte("hello\n"))
	tw.Close()
	if _, err := env.client.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/tmp", Content: &in}); err != nil {
		t.Fatal(err)
	}
	st, err := env.client.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/tmp/data/hello.txt"})
	if err != nil || st.Stat.Name != "hello.txt" || st.Stat.Size != 6 || st.Stat.Mode != 0o644 {
		t.Errorf("stat %+v, %v", st.Stat, err)
	}
	res, err := env.client.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: "/tmp/data"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Content.Close()
	if !res.Stat.Mode.IsDir() {
		t.Errorf("stat from GET %+v", res.Stat)
	}
	var names []string
	tr := tar.NewReader(res.Content)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, " ") != "data/ data/hello.txt" {
		t.Errorf("archive entries %q", names)
	}
	diff, err := env.client.ContainerDiff(ctx, id, client.ContainerDiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, c := range diff.Changes {
		changes = append(changes, c.Kind.String()+" "+c.Path)
	}
	if strings.Join(changes, ",") != "C /tmp,A /tmp/data,A /tmp/data/hello.txt" {
		t.Errorf("changes %q", changes)
	}
	if _, err := env.client.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/etc/passwd", Content: strings.NewReader("")}); err == nil || !strings.Contains(err.Error(), "extraction point is not a directory") {
		t.Errorf("copy onto a file: %v", err)
	}
	rc, err := env.client.ContainerExport(ctx, id, client.ContainerExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if !bytes.Contains(b, []byte("tmp/data/hello.txt")) || !bytes.Contains(b, []byte("etc/hostname")) {
		t.Errorf("export lacks files (%d bytes)", len(b))
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	env := newContainerEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := env.create(t, "", container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	if _, err := env.client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	one, err := env.client.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s container.StatsResponse
	if err := json.NewDecoder(one.Body).Decode(&s); err != nil || s.Read.IsZero() || !s.PreRead.IsZero() || s.MemoryStats.Usage == 0 {
		t.Errorf("one-shot stats %+v, %v", s, err)
	}
	one.Body.Close()
	stream, err := env.client.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	dec := json.NewDecoder(stream.Body)
	var a, b container.StatsResponse
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if !b.PreRead.Equal(a.Read) || b.PreCPUStats.CPUUsage.TotalUsage != a.CPUStats.CPUUsage.TotalUsage || !b.Read.After(a.Read) {
		t.Errorf("second sample does not carry the first as previous: %v %v", a.Read, b.PreRead)
	}
}
