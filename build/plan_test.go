package build

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"berth/build/dockerfile"
)

func readDockerfile(t *testing.T, src string) *dockerfile.Dockerfile {
	t.Helper()
	d, err := dockerfile.Read("Dockerfile", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNeededStages(t *testing.T) {
	t.Parallel()
	src := `ARG BASE=busybox
FROM $BASE AS deps
FROM busybox AS tools
FROM busybox AS unused
RUN exit 7
FROM deps AS build
COPY --from=tools /bin/sh /sh
RUN --mount=type=bind,from=2,target=/x true
FROM scratch AS final
COPY --from=build / /
`
	tests := []struct {
		target string
		want   []int
	}{
		{"final", []int{0, 1, 2, 3, 4}},
		{"build", []int{0, 1, 2, 3}},
		{"deps", []int{0}},
		{"unused", []int{2}},
	}
	d := readDockerfile(t, src)
	j := &job{df: d, opts: BuildOptions{}, used: map[string]bool{}}
	if err := j.resolveMeta(); err != nil {
		t.Fatal(err)
	}
	deps, err := j.dependencies()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		s, _ := d.Stage(tt.target)
		if got := neededStages(deps, s.Index); !slices.Equal(got, tt.want) {
			t.Errorf("target %s: stages %v, want %v", tt.target, got, tt.want)
		}
	}
}

func TestStepNumbers(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t, "ARG A=a\nFROM $A AS x\nRUN 1\nRUN 2\nFROM b\nCOPY --from=x / /\nFROM c\nRUN 3\n")
	tests := []struct {
		target int
		labels map[string]string
		first  []int
		total  int
	}{
		{2, map[string]string{"k": "v"}, []int{2, 5, 7}, 9}, // the ARG, 7 instructions, the --label step
		{1, nil, []int{2, 5}, 6},                            // stages after the target are not counted
		{0, nil, []int{2}, 4},
	}
	for _, tt := range tests {
		j := &job{df: d, opts: BuildOptions{Labels: tt.labels}}
		j.numberSteps(tt.target)
		if !slices.Equal(j.first, tt.first) || j.total != tt.total {
			t.Errorf("target %d: first %v total %d, want %v and %d", tt.target, j.first, j.total, tt.first, tt.total)
		}
	}
}

func TestMetaArgs(t *testing.T) {
	t.Parallel()
	v := "from-cli"
	d := readDockerfile(t, "ARG A=one\nARG B=${A}-two\nARG C\nARG D=default\nFROM x\n")
	j := &job{df: d, opts: BuildOptions{BuildArgs: map[string]*string{"D": &v, "UNUSED": &v, "HTTP_PROXY": &v}}, used: map[string]bool{}}
	if err := j.resolveMeta(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"A": "one", "B": "one-two", "D": "from-cli", "TARGETOS": "linux"} {
		if got, ok := j.metaLookup(k); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, want)
		}
	}
	if _, ok := j.metaLookup("C"); ok {
		t.Error("C has no value but is set")
	}
	if got := j.unusedArgs(); !slices.Equal(got, []string{"UNUSED"}) {
		t.Errorf("unused args %v, want [UNUSED] (proxies are never reported)", got)
	}
}

func TestOrderedOutput(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	sink := func(e Event) {
		mu.Lock()
		got = append(got, e.Text)
		mu.Unlock()
	}
	o := newOrdered(sink, 3)
	o.stages[1].Write([]byte("b1"))
	o.stages[2].Write([]byte("c1"))
	o.stages[0].Write([]byte("a1"))
	o.stages[2].finish()
	o.stages[1].Write([]byte("b2"))
	o.stages[0].finish()
	o.stages[1].Write([]byte("b3"))
	o.stages[1].finish()
	if want := []string{"a1", "b1", "b2", "b3", "c1"}; !slices.Equal(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
}

func TestOrderedOutputFlushAll(t *testing.T) {
	t.Parallel()
	var got []string
	o := newOrdered(func(e Event) { got = append(got, e.Text) }, 2)
	o.stages[1].Write([]byte("failed stage"))
	o.flushAll()
	o.stages[0].Write([]byte("late"))
	if want := []string{"failed stage", "late"}; !slices.Equal(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
}

func TestRunArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src    string
		want   []string
		script bool
	}{
		{"RUN echo hi", []string{"/bin/sh", "-c", "echo hi"}, false},
		{`RUN ["echo", "hi"]`, []string{"echo", "hi"}, false},
		{"RUN <<EOF\necho one\nEOF", []string{"/bin/sh", "-c", "echo one\n"}, false},
		{"RUN <<EOF\n#!/bin/sh\necho one\nEOF", []string{"/dev/pipes/EOF"}, true},
		{"RUN cat <<EOF > /x\nbody\nEOF", []string{"/bin/sh", "-c", "cat <<EOF > /x\nbody\nEOF"}, false},
	}
	for _, tt := range tests {
		d := readDockerfile(t, "FROM x\n"+tt.src+"\n")
		s := &stage{cfg: scratchConfig("")}
		argv, script := s.runArgv(d.Stages[0].Steps[0].(*dockerfile.Run))
		if !slices.Equal(argv, tt.want) || (script != nil) != tt.script {
			t.Errorf("%q: argv %q script %v, want %q %v", tt.src, argv, script != nil, tt.want, tt.script)
		}
	}
}
