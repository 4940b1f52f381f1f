package cli

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"strings"

	"github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// listValue is a repeatable flag whose values are checked (and may be
// rewritten) as they are parsed, so a bad value is reported as docker
// reports it: `invalid argument "x" for "-e, --env" flag: ...`.
type listValue struct {
	vals  *[]string
	check func(string) (string, error)
}

func (l *listValue) Set(s string) error {
	v, err := l.check(s)
	if err != nil {
		return err
	}
	*l.vals = append(*l.vals, v)
	return nil
}

func (l *listValue) String() string {
	if len(*l.vals) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.vals, " ") + "]"
}

func (l *listValue) Type() string { return "list" }

// listFlag registers a repeatable flag whose values check accepts; nil
// accepts anything.
func listFlag(f *pflag.FlagSet, p *[]string, name, short, usage string, check func(string) (string, error)) {
	if check == nil {
		check = func(s string) (string, error) { return s, nil }
	}
	f.VarP(&listValue{vals: p, check: check}, name, short, usage)
}

// validateEnv is docker's rule for -e: a name is required; "NAME" alone
// takes the value from this process's environment when it has one.
func validateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", fmt.Errorf("invalid environment variable: %s", v)
	}
	if hasValue {
		return v, nil
	}
	if val, ok := os.LookupEnv(k); ok {
		return k + "=" + val, nil
	}
	return v, nil
}

// validateExtraHost accepts "host:ip" and "host=ip", where ip may be the
// special "host-gateway".
func validateExtraHost(v string) (string, error) {
	host, ip, ok := strings.Cut(v, "=")
	if !ok {
		host, ip, ok = strings.Cut(v, ":")
	}
	if !ok || host == "" {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return host + ":" + ip, nil
}

func validateIP(v string) (string, error) {
	if _, err := netip.ParseAddr(strings.TrimSpace(v)); err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return strings.TrimSpace(v), nil
}

func validateAttach(v string) (string, error) {
	switch s := strings.ToLower(v); s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return "", errors.New("valid streams are STDIN, STDOUT and STDERR")
}

func validateUlimit(v string) (string, error) {
	if _, err := units.ParseUlimit(v); err != nil {
		return "", err
	}
	return v, nil
}

func validateMount(v string) (string, error) {
	if _, err := parseMount(v); err != nil {
		return "", err
	}
	return v, nil
}

// bytesValue is a size flag ("64m", "1g") as docker's MemBytes; minusOne
// also allows -1 (unlimited), as --memory-swap does.
type bytesValue struct {
	n        *int64
	minusOne bool
}

func (b *bytesValue) Set(s string) error {
	if b.minusOne && s == "-1" {
		*b.n = -1
		return nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	*b.n = n
	return nil
}

func (b *bytesValue) String() string {
	if *b.n == 0 {
		return "0"
	}
	return units.BytesSize(float64(*b.n))
}

func (b *bytesValue) Type() string { return "bytes" }

// decimalValue is --cpus: a rational number of CPUs kept in nano-CPUs.
type decimalValue struct{ nano *int64 }

func (d *decimalValue) Set(s string) error {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*d.nano = nano.Num().Int64()
	return nil
}

func (d *decimalValue) String() string {
	return big.NewRat(*d.nano, 1e9).FloatString(3)
}

func (d *decimalValue) Type() string { return "decimal" }
