package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"berth/errdefs"
)

// Defaults, as Docker's but under berth's own names so both can run on one
// host.
const (
	DefaultDataRoot = "/var/lib/berth"
	DefaultExecRoot = "/run/berth"
	DefaultHost     = "unix:///run/berth/berth.sock"
	DefaultConfig   = "/etc/berth/daemon.json"
	DefaultDriver   = "overlay2"
)

// Runtime is one entry of daemon.json "runtimes".
type Runtime struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"`
}

// AddressPool is one entry of "default-address-pools".
type AddressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// Config is the daemon's configuration. Its JSON keys are daemon.json's,
// the same as Docker's for the options berth shares with it.
type Config struct {
	Hosts               []string           `json:"hosts,omitempty"`
	DataRoot            string             `json:"data-root,omitempty"`
	ExecRoot            string             `json:"exec-root,omitempty"`
	Pidfile             string             `json:"pidfile,omitempty"`
	StorageDriver       string             `json:"storage-driver,omitempty"`
	StorageOpts         []string           `json:"storage-opts,omitempty"`
	Debug               bool               `json:"debug,omitempty"`
	LogLevel            string             `json:"log-level,omitempty"`
	LogFormat           string             `json:"log-format,omitempty"`
	DefaultRuntime      string             `json:"default-runtime,omitempty"`
	Runtimes            map[string]Runtime `json:"runtimes,omitempty"`
	LogDriver           string             `json:"log-driver,omitempty"`
	LogOpts             map[string]string  `json:"log-opts,omitempty"`
	LiveRestore         bool               `json:"live-restore,omitempty"`
	Bip                 string             `json:"bip,omitempty"`
	Bridge              string             `json:"bridge,omitempty"`
	DefaultAddressPools []AddressPool      `json:"default-address-pools,omitempty"`
	InsecureRegistries  []string           `json:"insecure-registries,omitempty"`
	RegistryMirrors     []string           `json:"registry-mirrors,omitempty"`
	MaxDownloads        int                `json:"max-concurrent-downloads,omitempty"`
	MaxUploads          int                `json:"max-concurrent-uploads,omitempty"`
	Labels              []string           `json:"labels,omitempty"`
}

// LoadFile reads a daemon.json. Unknown keys are an error, as in Docker, so
// a typo does not silently leave a setting at its default.
func LoadFile(path string) (Config, map[string]any, error) {
	var cfg Config
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("unable to configure the berth daemon with file %s: %w", path, err)
	}
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		return cfg, nil, fmt.Errorf("unable to configure the berth daemon with file %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	known := knownKeys()
	var unknown []string
	for k := range keys {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return cfg, nil, fmt.Errorf("unable to configure the berth daemon with file %s: the following directives don't match any configuration option: %s: %w", path, strings.Join(unknown, ", "), errdefs.ErrInvalidArgument)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cfg); err != nil {
		return cfg, nil, fmt.Errorf("unable to configure the berth daemon with file %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return cfg, keys, nil
}

func knownKeys() map[string]bool {
	out := map[string]bool{}
	for _, k := range configKeys {
		out[k] = true
	}
	return out
}

// configKeys lists every daemon.json key Config understands; a test checks
// it against the struct tags.
var configKeys = []string{
	"hosts", "data-root", "exec-root", "pidfile", "storage-driver", "storage-opts", "debug",
	"log-level", "log-format", "default-runtime", "runtimes", "log-driver", "log-opts", "live-restore",
	"bip", "bridge", "default-address-pools", "insecure-registries", "registry-mirrors",
	"max-concurrent-downloads", "max-concurrent-uploads", "labels",
}

// Merge lays the flags the user set over the file's settings. A setting
// given both ways is an error, as in Docker.
func Merge(file Config, fileKeys map[string]any, flags Config, setFlags map[string]bool) (Config, error) {
	var clash []string
	pairs := []struct {
		key       string
		flag      string
		flagVal   string
		fileVal   string
		fileApply func()
	}{
		{"hosts", "host", strings.Join(flags.Hosts, ","), strings.Join(file.Hosts, ","), func() { flags.Hosts = file.Hosts }},
		{"data-root", "data-root", flags.DataRoot, file.DataRoot, func() { flags.DataRoot = file.DataRoot }},
		{"exec-root", "exec-root", flags.ExecRoot, file.ExecRoot, func() { flags.ExecRoot = file.ExecRoot }},
		{"pidfile", "pidfile", flags.Pidfile, file.Pidfile, func() { flags.Pidfile = file.Pidfile }},
		{"storage-driver", "storage-driver", flags.StorageDriver, file.StorageDriver, func() { flags.StorageDriver = file.StorageDriver }},
		{"log-level", "log-level", flags.LogLevel, file.LogLevel, func() { flags.LogLevel = file.LogLevel }},
		{"default-runtime", "default-runtime", flags.DefaultRuntime, file.DefaultRuntime, func() { flags.DefaultRuntime = file.DefaultRuntime }},
		{"debug", "debug", fmt.Sprint(flags.Debug), fmt.Sprint(file.Debug), func() { flags.Debug = file.Debug }},
		{"bip", "bip", flags.Bip, file.Bip, func() { flags.Bip = file.Bip }},
		{"bridge", "bridge", flags.Bridge, file.Bridge, func() { flags.Bridge = file.Bridge }},
	}
	for _, p := range pairs {
		_, inFile := fileKeys[p.key]
		switch {
		case inFile && setFlags[p.flag]:
			clash = append(clash, fmt.Sprintf("%s: (from flag: %s, from file: %s)", p.key, p.flagVal, p.fileVal))
		case inFile:
			p.fileApply()
		}
	}
	if len(clash) > 0 {
		return flags, fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s: %w", strings.Join(clash, ", "), errdefs.ErrInvalidArgument)
	}
	// Settings that have no flag come from the file alone.
	flags.StorageOpts, flags.LogFormat, flags.Runtimes = file.StorageOpts, file.LogFormat, file.Runtimes
	flags.LogDriver, flags.LogOpts, flags.LiveRestore = file.LogDriver, file.LogOpts, file.LiveRestore
	flags.DefaultAddressPools = file.DefaultAddressPools
	flags.InsecureRegistries, flags.RegistryMirrors = file.InsecureRegistries, file.RegistryMirrors
	flags.MaxDownloads, flags.MaxUploads, flags.Labels = file.MaxDownloads, file.MaxUploads, file.Labels
	return flags, nil
}

// withDefaults fills what neither flags nor file set.
func (c Config) withDefaults() Config {
	if len(c.Hosts) == 0 {
		c.Hosts = []string{DefaultHost}
	}
	if c.DataRoot == "" {
		c.DataRoot = DefaultDataRoot
	}
	if c.ExecRoot == "" {
		c.ExecRoot = DefaultExecRoot
	}
	if c.Pidfile == "" {
		c.Pidfile = c.ExecRoot + "/berth.pid"
	}
	if c.StorageDriver == "" {
		c.StorageDriver = DefaultDriver
	}
	if c.DefaultRuntime == "" {
		c.DefaultRuntime = "runc"
	}
	if c.Bridge == "" {
		c.Bridge = "berth0"
	}
	if c.LogDriver == "" {
		c.LogDriver = "json-file"
	}
	if c.MaxDownloads == 0 {
		c.MaxDownloads = 3
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = 5
	}
	return c
}
