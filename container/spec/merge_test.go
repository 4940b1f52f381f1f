package spec

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"berth/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func image(entrypoint, cmd []string, env ...string) dockerspec.DockerOCIImageConfig {
	return dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Entrypoint: entrypoint, Cmd: cmd, Env: env}}
}

// The cases of Docker's "ENTRYPOINT and CMD interact" table and the run
// reference's --entrypoint section.
func TestMergeCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		imgEP, imgCmd  []string
		userEP, usrCmd []string
		want           []string
		wantErr        bool
	}{
		{name: "image cmd only", imgCmd: []string{"sh"}, want: []string{"sh"}},
		{name: "image entrypoint and cmd", imgEP: []string{"/ep"}, imgCmd: []string{"-x"}, want: []string{"/ep", "-x"}},
		{name: "run cmd replaces image cmd", imgEP: []string{"/ep"}, imgCmd: []string{"-x"}, usrCmd: []string{"-y"}, want: []string{"/ep", "-y"}},
		{name: "run cmd without image entrypoint", imgCmd: []string{"sh"}, usrCmd: []string{"echo", "hi"}, want: []string{"echo", "hi"}},
		{name: "--entrypoint resets image cmd", imgEP: []string{"/ep"}, imgCmd: []string{"-x"}, userEP: []string{"/bin/true"}, want: []string{"/bin/true"}},
		{name: "--entrypoint with cmd", imgCmd: []string{"sh"}, userEP: []string{"/bin/echo"}, usrCmd: []string{"a"}, want: []string{"/bin/echo", "a"}},
		{name: "--entrypoint empty clears, cmd given", imgEP: []string{"/ep"}, imgCmd: []string{"-x"}, userEP: []string{""}, usrCmd: []string{"ls"}, want: []string{"ls"}},
		{name: "--entrypoint empty and no cmd", imgEP: []string{"/ep"}, imgCmd: []string{"-x"}, userEP: []string{""}, wantErr: true},
		{name: "nothing at all", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &container.Config{Entrypoint: tt.userEP, Cmd: tt.usrCmd}
			got, err := Merge(cfg, image(tt.imgEP, tt.imgCmd))
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "no command specified" {
					t.Fatalf("err = %v, want no command specified", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if args := commandArgs(got); !slices.Equal(args, tt.want) {
				t.Fatalf("args = %q, want %q", args, tt.want)
			}
			// The stored record goes through JSON; merging it again must
			// not bring back an entrypoint cleared with --entrypoint "".
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var stored container.Config
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			again, err := Merge(&stored, image(tt.imgEP, tt.imgCmd))
			if err != nil {
				t.Fatal(err)
			}
			if args := commandArgs(again); !slices.Equal(args, tt.want) {
				t.Fatalf("merge not idempotent: %q, want %q", args, tt.want)
			}
		})
	}
}

func TestMergeFields(t *testing.T) {
	t.Parallel()
	img := image(nil, []string{"sh"}, "PATH=/img/bin", "A=img", "B=img")
	img.WorkingDir, img.User, img.StopSignal = "/srv", "daemon", "SIGQUIT"
	img.Labels = map[string]string{"a": "img", "b": "img"}
	img.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	got, err := Merge(&container.Config{Env: []string{"B=run", "C=run"}, Labels: map[string]string{"b": "run"}}, img)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B=run", "C=run", "PATH=/img/bin", "A=img"}; !slices.Equal(got.Env, want) {
		t.Errorf("env = %q, want %q", got.Env, want)
	}
	if got.WorkingDir != "/srv" || got.User != "daemon" || got.StopSignal != "SIGQUIT" {
		t.Errorf("workdir/user/stopsignal = %q %q %q", got.WorkingDir, got.User, got.StopSignal)
	}
	if got.Labels["a"] != "img" || got.Labels["b"] != "run" {
		t.Errorf("labels = %v", got.Labels)
	}
	if len(got.ExposedPorts) != 1 {
		t.Errorf("exposed ports = %v", got.ExposedPorts)
	}
	over, err := Merge(&container.Config{WorkingDir: "/w", User: "1000"}, img)
	if err != nil {
		t.Fatal(err)
	}
	if over.WorkingDir != "/w" || over.User != "1000" {
		t.Errorf("-w/-u not kept: %q %q", over.WorkingDir, over.User)
	}
}

func TestProcessEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		tty  bool
		want []string
	}{
		{name: "defaults", want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "HOME=/root"}},
		{name: "tty", tty: true, want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=xterm", "HOME=/root"}},
		{name: "image PATH replaces default in place", env: []string{"FOO=1", "PATH=/x"}, want: []string{"PATH=/x", "HOSTNAME=h", "FOO=1", "HOME=/root"}},
		{name: "HOME and TERM overridable", tty: true, env: []string{"HOME=/h", "TERM=dumb"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=dumb", "HOME=/h"}},
		{name: "bare name unsets", env: []string{"HOSTNAME"}, want: []string{"PATH=" + DefaultPath, "HOME=/root"}},
		{name: "later wins", env: []string{"A=1", "A=2"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "A=2", "HOME=/root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := processEnv(tt.env, "h", tt.tty, "/root"); !slices.Equal(got, tt.want) {
				t.Fatalf("env = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRestartPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    container.RestartPolicy
		wantErr string
	}{
		{in: "", want: container.RestartPolicy{Name: "no"}},
		{in: "no", want: container.RestartPolicy{Name: "no"}},
		{in: "always", want: container.RestartPolicy{Name: "always"}},
		{in: "unless-stopped", want: container.RestartPolicy{Name: "unless-stopped"}},
		{in: "on-failure", want: container.RestartPolicy{Name: "on-failure"}},
		{in: "on-failure:3", want: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}},
		{in: "on-failure:x", wantErr: "invalid restart policy format: maximum retry count must be an integer"},
		{in: "on-failure:-1", wantErr: "invalid restart policy: maximum retry count cannot be negative"},
		{in: "always:3", wantErr: "invalid restart policy format: maximum retry count can only be used with 'on-failure'"},
		{in: "sometimes", wantErr: "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRestartPolicy(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseMemorySize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "512m", want: 512 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1GB", want: 1 << 30},
		{in: "64k", want: 64 << 10},
		{in: "100", want: 100},
		{in: "abc", wantErr: "invalid size: 'abc'"},
		{in: "", wantErr: "invalid size: ''"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMemorySize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
