package spec

import (
	"errors"
	"slices"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

func TestExecProcess(t *testing.T) {
	t.Parallel()
	base := func(change func(*ExecInput)) ExecInput {
		in := ExecInput{
			Config:     &container.Config{Env: []string{"A=1", "PATH=/x"}, WorkingDir: "/srv", Tty: true},
			HostConfig: &container.HostConfig{CapDrop: []string{"NET_RAW"}, SecurityOpt: []string{"no-new-privileges"}},
			Hostname:   "h",
			User:       User{Home: "/root"},
			Cmd:        []string{"sh"},
			CapLastCap: 40,
		}
		if change != nil {
			change(&in)
		}
		return in
	}
	tests := []struct {
		name   string
		change func(*ExecInput)
		check  func(t *testing.T, in ExecInput)
	}{
		{"env rebuilt for the exec's tty, exec -e last", func(in *ExecInput) { in.Env = []string{"B=2", "A=3"} }, func(t *testing.T, in ExecInput) {
			p, err := ExecProcess(in)
			want := []string{"PATH=/x", "HOSTNAME=h", "A=3", "B=2", "HOME=/root"}
			if err != nil || !slices.Equal(p.Env, want) || p.Terminal {
				t.Fatalf("env %q, %v; want %q and no terminal", p.Env, err, want)
			}
		}},
		{"container workdir, caps and no-new-privileges", nil, func(t *testing.T, in ExecInput) {
			p, err := ExecProcess(in)
			if err != nil || p.Cwd != "/srv" || !p.NoNewPrivileges || slices.Contains(p.Capabilities.Effective, "CAP_NET_RAW") || len(p.Capabilities.Effective) != 13 {
				t.Fatalf("%+v, %v", p, err)
			}
		}},
		{"-w, -t, -u", func(in *ExecInput) {
			in.WorkingDir, in.Tty, in.ConsoleSize, in.User = "/tmp", true, [2]uint{10, 20}, User{UID: 1000, GID: 1000}
		}, func(t *testing.T, in ExecInput) {
			p, err := ExecProcess(in)
			if err != nil || p.Cwd != "/tmp" || !p.Terminal || p.ConsoleSize.Width != 20 || p.User.UID != 1000 ||
				p.Capabilities.Effective != nil || !slices.Contains(p.Env, "TERM=xterm") || !slices.Contains(p.Env, "HOME=/") {
				t.Fatalf("%+v, %v", p, err)
			}
		}},
		{"--privileged grants all", func(in *ExecInput) { in.Privileged = true }, func(t *testing.T, in ExecInput) {
			p, err := ExecProcess(in)
			if err != nil || len(p.Capabilities.Effective) != 41 {
				t.Fatalf("%+v, %v", p.Capabilities, err)
			}
		}},
		{"no command", func(in *ExecInput) { in.Cmd = nil }, func(t *testing.T, in ExecInput) {
			if _, err := ExecProcess(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v", err)
			}
		}},
		{"relative -w", func(in *ExecInput) { in.WorkingDir = "tmp" }, func(t *testing.T, in ExecInput) {
			if _, err := ExecProcess(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, base(tt.change))
		})
	}
}
