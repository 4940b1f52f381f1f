package integration

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPingAndVersions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for _, method := range []string{"GET", "HEAD"} {
		resp, err := d.do(method, "/_ping", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Api-Version") != "1.51" || h.Get("Ostype") != "linux" ||
			h.Get("Docker-Experimental") != "false" || h.Get("Builder-Version") == "" || h.Get("Swarm") != "inactive" ||
			h.Get("Cache-Control") != "no-cache, no-store, must-revalidate" || h.Get("Pragma") != "no-cache" {
			t.Fatalf("%s /_ping: %d %v", method, resp.StatusCode, h)
		}
		if want := map[string]string{"GET": "OK", "HEAD": ""}[method]; string(body) != want {
			t.Fatalf("%s /_ping body %q", method, body)
		}
	}
	cases := []struct {
		path   string
		status int
		msg    string
	}{
		{"/version", 200, ""},
		{"/v1.24/version", 200, ""},
		{"/v1.50/version", 200, ""},
		{"/v1.11/version", 400, "client version 1.11 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"/v1.50/no/such/route", 404, "page not found"},
		{"/v1.50/images/nope:latest/json", 404, "No such image: nope:latest"},
	}
	for _, tc := range cases {
		resp, err := d.get(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.path, resp.StatusCode, tc.status, body)
		}
		if tc.msg != "" && body["message"] != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.path, body["message"], tc.msg)
		}
		if tc.status == 200 && (body["ApiVersion"] != "1.51" || body["MinAPIVersion"] != "1.24" || body["Os"] != "linux") {
			t.Errorf("%s: %v", tc.path, body)
		}
	}
}

func TestOneDaemonPerDataRoot(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	// A second daemon on the same data root but another socket must refuse.
	other := filepath.Join(d.dir, "other.sock")
	r := runCmd(t, nil, nil, berthBin, "daemon", "--data-root", d.DataRoot, "--exec-root", filepath.Join(d.dir, "exec2"), "-H", "unix://"+other, "--config-file", filepath.Join(d.dir, "daemon.json"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "is in use by another berth daemon (pid ") {
		t.Fatalf("second daemon on one root: %s", r)
	}
	// The first one is unharmed.
	if out := d.must("version", "--format", "{{.Server.Version}}"); strings.TrimSpace(out) == "" {
		t.Fatal("first daemon stopped answering")
	}
}

func TestDaemonsSideBySide(t *testing.T) {
	t.Parallel()
	a := startDaemon(t)
	b := startDaemon(t, "--storage-driver", "vfs")
	a.importBusybox("only-in-a:latest")
	if out := b.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("daemon b sees a's images: %q", out)
	}
	if out := b.must("info", "--format", "{{.Driver}}"); strings.TrimSpace(out) != "vfs" {
		t.Fatalf("b's driver: %q", out)
	}
	if out := a.must("info", "--format", "{{.Driver}}"); strings.TrimSpace(out) != "overlay2" {
		t.Fatalf("a's driver: %q", out)
	}
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("kept:latest")
	if err := d.stop(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d.log)
	}
	for _, p := range []string{d.Sock, filepath.Join(d.ExecRoot, "berth.pid")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	// State survives the restart.
	d.start()
	if out := d.must("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != "kept:latest" {
		t.Fatalf("after restart: %q", out)
	}
}

func TestDaemonJSON(t *testing.T) {
	t.Parallel()
	testRoot := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(testRoot, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, body string
		flags      []string
		want       string
	}{
		{"unknown key", `{"storage-driver":"vfs","no-such-option":1}`, nil, "the following directives don't match any configuration option: no-such-option"},
		{"flag and file", `{"storage-driver":"vfs"}`, []string{"--storage-driver", "overlay2"}, "specified both as a flag and in the configuration file: storage-driver"},
		{"bad json", `{"storage-driver":`, nil, "unable to configure the berth daemon with file"},
		{"aufs", `{"storage-driver":"aufs"}`, nil, "aufs is not in mainline Linux kernels"},
		{"devicemapper", `{"storage-driver":"devicemapper"}`, nil, `storage driver "devicemapper" is not supported`},
	}
	for _, tc := range cases {
		cfg := write(strings.ReplaceAll(tc.name, " ", "-")+".json", tc.body)
		dir := t.TempDir()
		args := append([]string{"daemon", "--config-file", cfg, "--data-root", filepath.Join(dir, "d"), "--exec-root", filepath.Join(dir, "e"), "-H", "unix://" + filepath.Join(dir, "s.sock")}, tc.flags...)
		out, err := exec.Command(berthBin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: err %v, output %q, want %q", tc.name, err, out, tc.want)
		}
	}
}

func TestDaemonJSONApplies(t *testing.T) {
	t.Parallel()
	testRoot, err := os.MkdirTemp("", "bitj-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(testRoot) })
	d := &daemon{t: t, dir: testRoot, DataRoot: filepath.Join(testRoot, "data"), ExecRoot: filepath.Join(testRoot, "exec"), Sock: filepath.Join(testRoot, "berth.sock")}
	d.Host = "unix://" + d.Sock
	os.WriteFile(filepath.Join(testRoot, "daemon.json"), []byte(`{"storage-driver": "vfs", "labels": ["team=infra"]}`), 0o600)
	t.Cleanup(func() {
		d.stop()
		d.removeNetwork()
	})
	d.start()
	if out := d.must("info", "--format", "{{.Driver}} {{.Labels}}"); strings.TrimSpace(out) != "vfs [team=infra]" {
		t.Fatalf("daemon.json not applied: %q", out)
	}
}
