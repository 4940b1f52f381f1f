package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// buildCommands is `build`. (`image build` and `builder prune` wait for
// the help test, which pins those groups' listings, to know them.)
func buildCommands(e *env) []*cobra.Command {
	build := newBuildCommand(e)
	build.Annotations = map[string]string{annotCategory: "common"}
	return []*cobra.Command{
		build,
	}
}

type buildOptions struct {
	tags, buildArgs, labels, extraHosts, ulimits, securityOpt []string
	file, target, iidfile, network, platform, cgroupParent    string
	cpusetCPUs, cpusetMems                                    string
	noCache, pull, quiet, rm, forceRm                         bool
	memory, memorySwap, shmSize                               int64
	cpuShares, cpuQuota, cpuPeriod                            int64
}

func newBuildCommand(e *env) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, e, o, args[0])
		},
	}
	f := cmd.Flags()
	listFlag(f, &o.tags, "tag", "t", `Name and optionally a tag in the "name:tag" format`, validateTag)
	f.StringVarP(&o.file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	listFlag(f, &o.buildArgs, "build-arg", "", "Set build-time variables", nil)
	listFlag(f, &o.labels, "label", "", "Set metadata for an image", nil)
	f.StringVar(&o.target, "target", "", "Set the target build stage to build")
	f.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.StringVar(&o.iidfile, "iidfile", "", "Write the image ID to the file")
	f.StringVar(&o.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	f.BoolVar(&o.rm, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "Always remove intermediate containers")
	listFlag(f, &o.extraHosts, "add-host", "", "Add a custom host-to-IP mapping (host:ip)", nil)
	listFlag(f, &o.ulimits, "ulimit", "", "Ulimit options", validateUlimit)
	listFlag(f, &o.securityOpt, "security-opt", "", "Security options", nil)
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", `Set the parent cgroup for the "RUN" instructions during build`)
	f.VarP(&bytesValue{n: &o.memory}, "memory", "m", "Memory limit")
	f.Var(&bytesValue{n: &o.memorySwap, minusOne: true}, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Var(&bytesValue{n: &o.shmSize}, "shm-size", "Size of /dev/shm")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit the CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit the CPU CFS (Completely Fair Scheduler) period")
	f.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	return cmd
}

func validateTag(v string) (string, error) {
	if _, err := reference.ParseNormalizedNamed(v); err != nil {
		return "", fmt.Errorf("invalid reference format")
	}
	return v, nil
}

func runBuild(cmd *cobra.Command, e *env, o buildOptions, arg string) error {
	bc, err := buildContext(e, o.file, arg)
	if err != nil {
		return err
	}
	opts, err := o.clientOptions(cmd, bc.dockerfile, bc.text)
	if err != nil {
		return err
	}
	if o.iidfile != "" {
		if err := os.Remove(o.iidfile); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing image ID file: %w", err)
		}
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	body := &countingReader{r: bc.body}
	res, err := c.ImageBuild(cmd.Context(), body, opts)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if !o.quiet {
		fmt.Fprintf(e.stdout, "Sending build context to the daemon  %s\n", units.HumanSizeWithPrecision(float64(body.n), 4))
	}
	id, err := showBuild(e, res.Body, o.quiet)
	if err != nil {
		return err
	}
	if o.iidfile != "" && id != "" {
		if err := os.WriteFile(o.iidfile, []byte(id), 0o644); err != nil {
			return fmt.Errorf("write image ID file: %w", err)
		}
	}
	return nil
}

// sentContext is what `build` sends: the context's tar, the Dockerfile's
// name in it, and its text when known here (for the pull credentials).
type sentContext struct {
	body       io.Reader
	dockerfile string
	text       []byte
}

// buildContext opens the context: a directory, or stdin ("-") holding a
// tar or a bare Dockerfile.
func buildContext(e *env, file, arg string) (*sentContext, error) {
	if strings.Contains(arg, "://") || strings.HasPrefix(arg, "git@") {
		return nil, fmt.Errorf("unable to prepare context: remote build contexts (%s) are not supported; clone or download it and build the directory", arg)
	}
	if arg == "-" {
		if file == "-" {
			return nil, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		br := bufio.NewReader(e.stdin)
		head, _ := br.Peek(512)
		if isTarStream(head) {
			return &sentContext{body: br, dockerfile: file}, nil
		}
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, err
		}
		return &sentContext{body: bytes.NewReader(dockerfileTar("Dockerfile", data)), dockerfile: "Dockerfile", text: data}, nil
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: path %q not found", arg)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("unable to prepare context: context must be a directory: %s", arg)
	}
	dir, err := filepath.Abs(arg)
	if err != nil {
		return nil, err
	}
	rel, extra, err := locateDockerfile(e, dir, file)
	if err != nil {
		return nil, err
	}
	sc := &sentContext{dockerfile: rel}
	if extra != nil {
		sc.text = extra.data
	} else {
		sc.text, _ = os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(contextTar(pw, dir, rel, extra)) }()
	sc.body = pr
	return sc, nil
}

// locateDockerfile finds the Dockerfile: -f is relative to the working
// directory; one outside the context, or from stdin, travels in the
// context under a random name.
func locateDockerfile(e *env, dir, file string) (string, *contextFile, error) {
	if file == "-" {
		data, err := io.ReadAll(e.stdin)
		if err != nil {
			return "", nil, err
		}
		name := randomDockerfileName()
		return name, &contextFile{name: name, data: data}, nil
	}
	abs := filepath.Join(dir, "Dockerfile")
	if file != "" {
		var err error
		if abs, err = filepath.Abs(file); err != nil {
			return "", nil, err
		}
	}
	if _, err := os.Stat(abs); err != nil {
		if file == "" {
			if _, err2 := os.Stat(filepath.Join(dir, "dockerfile")); err2 == nil {
				return "dockerfile", nil, nil
			}
		}
		return "", nil, fmt.Errorf("unable to prepare context: unable to evaluate symlinks in Dockerfile path: %w", err)
	}
	if rel, err := filepath.Rel(dir, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel), nil, nil
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return "", nil, err
	}
	name := randomDockerfileName()
	return name, &contextFile{name: name, data: data}, nil
}

func (o buildOptions) clientOptions(cmd *cobra.Command, dockerfile string, text []byte) (client.ImageBuildOptions, error) {
	opts := client.ImageBuildOptions{
		Tags: o.tags, SuppressOutput: o.quiet, NoCache: o.noCache, Remove: o.rm || o.forceRm, ForceRemove: o.forceRm,
		PullParent: o.pull, Dockerfile: dockerfile, Target: o.target, NetworkMode: o.network, ExtraHosts: o.extraHosts,
		SecurityOpt: o.securityOpt, CgroupParent: o.cgroupParent, Memory: o.memory, MemorySwap: o.memorySwap,
		ShmSize: o.shmSize, CPUShares: o.cpuShares, CPUQuota: o.cpuQuota, CPUPeriod: o.cpuPeriod,
		CPUSetCPUs: o.cpusetCPUs, CPUSetMems: o.cpusetMems, BuildArgs: map[string]*string{}, Labels: map[string]string{},
	}
	for _, a := range o.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			// "NAME" alone takes this process's value, or leaves it unset.
			if env, found := os.LookupEnv(k); found {
				v, ok = env, true
			}
		}
		if ok {
			opts.BuildArgs[k] = &v
		} else {
			opts.BuildArgs[k] = nil
		}
	}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		opts.Labels[k] = v
	}
	ulimits, err := parseUlimits(o.ulimits)
	if err != nil {
		return opts, err
	}
	opts.Ulimits = ulimits
	if o.platform != "" {
		p, err := parsePlatformFlag(o.platform)
		if err != nil {
			return opts, err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	opts.AuthConfigs = buildAuths(cmd, text)
	return opts, nil
}

var (
	reFromLine = regexp.MustCompile(`(?im)^\s*FROM\s+(?:--\S+\s+)*(\S+)`)
	reFromFlag = regexp.MustCompile(`(?i)--from=(\S+)`)
)

// buildAuths are the credentials the daemon may need to pull the images
// the Dockerfile names (FROM, COPY --from), for each registry the user
// logged in to. Only those registries' credentials travel, not all the
// user has; names built from ARGs cannot be known here and get none.
func buildAuths(cmd *cobra.Command, dockerfile []byte) map[string]registry.AuthConfig {
	out := map[string]registry.AuthConfig{}
	dir, err := credentials.Dir()
	if err != nil {
		return out
	}
	cfg, err := credentials.Load(dir)
	if err != nil {
		return out
	}
	var names []string
	for _, m := range reFromLine.FindAllSubmatch(dockerfile, -1) {
		names = append(names, string(m[1]))
	}
	for _, m := range reFromFlag.FindAllSubmatch(dockerfile, -1) {
		names = append(names, string(m[1]))
	}
	for _, name := range names {
		ref, err := reference.ParseNormalizedNamed(name)
		if err != nil || strings.Contains(name, "$") {
			continue
		}
		server := reference.Domain(ref)
		if _, done := out[server]; done {
			continue
		}
		a, err := cfg.Get(cmd.Context(), server)
		if err != nil {
			continue
		}
		out[server] = registry.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken,
			RegistryToken: a.RegistryToken, ServerAddress: server}
	}
	return out
}

// buildFailure is an error message of a build stream and its code (a
// failed RUN's exit status), which becomes the exit code as in docker.
type buildFailure struct {
	msg  string
	code int
}

// showBuild prints a build's stream and returns the built image's ID. A
// quiet build prints only the ID, or everything it held on failure.
func showBuild(e *env, body io.Reader, quiet bool) (string, error) {
	pr, pw := io.Pipe()
	res := &buildStream{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		res.split(body, pw)
	}()
	var out io.Writer = e.stdout
	var held bytes.Buffer
	if quiet {
		out = &held
	}
	err := newProgressDisplay(out).run(pr)
	pr.Close()
	<-done
	if res.failure != nil {
		if quiet {
			e.stderr.Write(held.Bytes())
		}
		code := res.failure.code
		if code == 0 {
			code = 1
		}
		return "", statusError{msg: res.failure.msg, code: code}
	}
	if err != nil {
		return "", err
	}
	if quiet {
		e.stdout.Write(held.Bytes())
	}
	return res.id, nil
}

// buildStream is what a build's stream said besides what is displayed.
type buildStream struct {
	id      string
	failure *buildFailure
}

// split passes display lines on to w and keeps the image ID (the aux
// message) and the error, which ends the stream.
func (b *buildStream) split(body io.Reader, w *io.PipeWriter) {
	dec := json.NewDecoder(body)
	enc := json.NewEncoder(w)
	for b.failure == nil {
		var m progressLine
		if err := dec.Decode(&m); err != nil {
			if !errors.Is(err, io.EOF) {
				w.CloseWithError(fmt.Errorf("read daemon stream: %w", err))
				return
			}
			break
		}
		switch {
		case m.Error != nil || m.ErrorMessage != "":
			b.failure = &buildFailure{msg: m.ErrorMessage}
			if m.Error != nil {
				b.failure.msg, b.failure.code = m.Error.Message, m.Error.Code
			}
		case m.Aux != nil && m.ID == "moby.image.id":
			var r struct{ ID string }
			if json.Unmarshal(*m.Aux, &r) == nil {
				b.id = r.ID
			}
		default:
			enc.Encode(m)
		}
	}
	w.Close()
}
