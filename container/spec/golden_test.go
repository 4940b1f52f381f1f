package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the current output")

func TestGolden(t *testing.T) {
	t.Parallel()
	yes := true
	pids := int64(100)
	tests := []struct {
		name   string
		change func(*Input)
	}{
		{"run-busybox", nil},
		{"privileged", func(in *Input) {
			in.HostConfig.Privileged = true
			mode, zero := os.FileMode(0o660), uint32(0)
			in.HostDevices = []specs.LinuxDevice{
				{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0, FileMode: &mode, UID: &zero, GID: &zero},
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &zero, GID: &zero},
			}
		}},
		{"resources-tty-init", func(in *Input) {
			in.Config.Tty = true
			in.Config.Env = []string{"APP=1"}
			in.Config.Cmd = []string{"top"}
			in.HostConfig.Init = &yes
			in.InitBinary = "/usr/bin/tini-static"
			in.HostConfig.Memory = 256 << 20
			in.HostConfig.NanoCPUs = 5e8
			in.HostConfig.CPUShares = 512
			in.HostConfig.PidsLimit = &pids
			in.HostConfig.OomScoreAdj = 500
			in.HostConfig.ShmSize = 128 << 20
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}}
			in.HostConfig.Tmpfs = map[string]string{"/run": "size=65536k"}
			in.HostConfig.ConsoleSize = [2]uint{40, 120}
			in.HostConfig.SecurityOpt = []string{"no-new-privileges"}
			in.HostConfig.CapDrop = []string{"NET_RAW"}
			in.User = User{UID: 33, GID: 33, Home: "/var/www"}
			in.CgroupV2 = true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.MarshalIndent(mustGenerate(t, busyboxInput(tt.change)), "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from the generated spec (go test -update rewrites it):\n%s", file, got)
			}
		})
	}
}
