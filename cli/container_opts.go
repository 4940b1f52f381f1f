package cli

import (
	"time"

	"github.com/spf13/pflag"
)

// createOptions are the flags `create` and `run` share: everything that
// becomes the container's Config, HostConfig and NetworkingConfig.
type createOptions struct {
	name, platform, pull, cidfile string
	quiet                         bool

	attach                  []string
	stdin, tty              bool
	env, envFile            []string
	labels, labelFiles      []string
	workdir, user           string
	entrypoint              string
	hostname, domainname    string
	stopSignal              string
	stopTimeout             int
	expose, publish         []string
	publishAll              bool
	volumes, mounts, tmpfs  []string
	volumesFrom             []string
	healthCmd               string
	healthInterval          time.Duration
	healthTimeout           time.Duration
	healthStartPeriod       time.Duration
	healthStartInterval     time.Duration
	healthRetries           int
	noHealthcheck           bool
	annotations, sysctls    []string
	storageOpts             []string
	autoRemove, init        bool
	readOnly, privileged    bool
	capAdd, capDrop         []string
	securityOpts            []string
	groupAdd                []string
	restart, runtime        string
	logDriver               string
	logOpts                 []string
	networks                []networkAttachment
	linkLocalIPs            []string
	ip, ip6, macAddress     string
	aliases                 []string
	addHosts                []string
	dns, dnsSearch, dnsOpts []string
	ipc, pid, uts, userns   string
	cgroupns, cgroupParent  string
	devices, deviceCgroup   []string
	ulimits                 []string
	memory, memorySwap      int64
	memoryReservation       int64
	memorySwappiness        int64
	shmSize                 int64
	nanoCPUs                int64
	cpuShares               int64
	cpuPeriod, cpuQuota     int64
	cpusetCpus, cpusetMems  string
	pidsLimit               int64
	blkioWeight             uint16
	oomKillDisable          bool
	oomScoreAdj             int
	volumeDriver            string
}

func addCreateFlags(f *pflag.FlagSet, o *createOptions) {
	f.StringVar(&o.name, "name", "", "Assign a name to the container")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	f.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	f.StringVar(&o.cidfile, "cidfile", "", "Write the container ID to the file")

	listFlag(f, &o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR", validateAttach)
	f.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	listFlag(f, &o.env, "env", "e", "Set environment variables", validateEnv)
	listFlag(f, &o.envFile, "env-file", "", "Read in a file of environment variables", nil)
	listFlag(f, &o.labels, "label", "l", "Set meta data on a container", nil)
	listFlag(f, &o.labelFiles, "label-file", "", "Read in a line delimited file of labels", nil)
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	f.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	// -h is the hostname here, as in docker: help is only --help.
	f.Bool("help", false, "Print usage")
	f.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	f.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	f.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")

	listFlag(f, &o.expose, "expose", "", "Expose a port or a range of ports", nil)
	listFlag(f, &o.publish, "publish", "p", "Publish a container's port(s) to the host", nil)
	f.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	listFlag(f, &o.volumes, "volume", "v", "Bind mount a volume", nil)
	listFlag(f, &o.mounts, "mount", "", "Attach a filesystem mount to the container", validateMount)
	listFlag(f, &o.tmpfs, "tmpfs", "", "Mount a tmpfs directory", nil)
	listFlag(f, &o.volumesFrom, "volumes-from", "", "Mount volumes from the specified container(s)", nil)
	f.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")

	f.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	f.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	f.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	f.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	listFlag(f, &o.annotations, "annotation", "", "Add an annotation to the container (passed through to the OCI runtime)", nil)
	listFlag(f, &o.sysctls, "sysctl", "", "Sysctl options", nil)
	listFlag(f, &o.storageOpts, "storage-opt", "", "Storage driver options for the container", nil)
	f.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	f.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	f.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	listFlag(f, &o.capAdd, "cap-add", "", "Add Linux capabilities", nil)
	listFlag(f, &o.capDrop, "cap-drop", "", "Drop Linux capabilities", nil)
	listFlag(f, &o.securityOpts, "security-opt", "", "Security Options", nil)
	listFlag(f, &o.groupAdd, "group-add", "", "Add additional groups to join", nil)
	f.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	f.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	f.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	listFlag(f, &o.logOpts, "log-opt", "", "Log driver options", nil)

	addHostFlags(f, o)
}

// addHostFlags are the networking, namespace and resource flags.
func addHostFlags(f *pflag.FlagSet, o *createOptions) {
	f.Var(networkList{&o.networks}, "network", "Connect a container to a network (a name, or name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC,link-local-ip=IP,driver-opt=K=V,gw-priority=N; repeat to join several)")
	listFlag(f, &o.linkLocalIPs, "link-local-ip", "", "Container IPv4/IPv6 link-local addresses", nil)
	f.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringVar(&o.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	f.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	listFlag(f, &o.aliases, "network-alias", "", "Add network-scoped alias for the container", nil)
	listFlag(f, &o.addHosts, "add-host", "", "Add a custom host-to-IP mapping (host:ip)", validateExtraHost)
	listFlag(f, &o.dns, "dns", "", "Set custom DNS servers", validateIP)
	listFlag(f, &o.dnsSearch, "dns-search", "", "Set custom DNS search domains", nil)
	listFlag(f, &o.dnsOpts, "dns-option", "", "Set DNS options", nil)
	f.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	f.StringVar(&o.pid, "pid", "", "PID namespace to use")
	f.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	f.StringVar(&o.userns, "userns", "", "User namespace to use")
	f.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)")
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")

	listFlag(f, &o.devices, "device", "", "Add a host device to the container", nil)
	listFlag(f, &o.deviceCgroup, "device-cgroup-rule", "", "Add a rule to the cgroup allowed devices list", nil)
	listFlag(f, &o.ulimits, "ulimit", "", "Ulimit options", validateUlimit)
	f.VarP(&bytesValue{n: &o.memory}, "memory", "m", "Memory limit")
	f.Var(&bytesValue{n: &o.memorySwap, minusOne: true}, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	f.Var(&bytesValue{n: &o.memoryReservation}, "memory-reservation", "Memory soft limit")
	f.Int64Var(&o.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	f.Var(&bytesValue{n: &o.shmSize}, "shm-size", "Size of /dev/shm")
	f.Var(&decimalValue{nano: &o.nanoCPUs}, "cpus", "Number of CPUs")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	f.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	f.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
}
