package integration

import (
	"strings"
	"testing"
)

// TestRunUserGroups: the supplementary groups a process gets for --user
// and --group-add, as dockerd gives them (measured with dockerd 20.10 and
// the same fixture): the primary group is always among them.
func TestRunUserGroups(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "nobody"}, "65534"},
		{[]string{"--user", "root"}, "0 10"},
		{[]string{"--user", "daemon"}, "1"},
		{[]string{"--user", "1000"}, "0"},
		{[]string{"--user", "daemon:29"}, "29"},
		{[]string{"--user", "4242:4343"}, "4343"},
		{[]string{"--user", "daemon", "--group-add", "777", "--group-add", "wheel"}, "1 10 777"},
		{[]string{"--user", "root", "--group-add", "wheel"}, "0 10"},
	} {
		args := append(append([]string{"run", "--rm", "--network", "none"}, tc.args...), "busybox", "grep", "Groups", "/proc/self/status")
		got := strings.TrimSpace(strings.TrimPrefix(d.must(args...), "Groups:"))
		if got != tc.want {
			t.Errorf("%v: Groups %q, want %q", tc.args, got, tc.want)
		}
	}
}
