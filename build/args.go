package build

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"berth/errdefs"
)

// proxyArgs may be passed with --build-arg without an ARG: RUN gets them
// in its environment, but they stay out of history and the cache key, as
// in Docker.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// platformArgs are the automatic platform ARGs BuildKit defines in the
// global scope: usable in FROM, and in a stage once declared by name.
func (j *job) platformArgs() map[string]string {
	os, arch := "linux", runtime.GOARCH
	target := os + "/" + arch
	if j.opts.Platform != "" {
		target = j.opts.Platform
	}
	tos, tarch, tvariant := splitPlatform(target)
	return map[string]string{
		"BUILDPLATFORM": os + "/" + arch, "BUILDOS": os, "BUILDARCH": arch, "BUILDVARIANT": "",
		"TARGETPLATFORM": target, "TARGETOS": tos, "TARGETARCH": tarch, "TARGETVARIANT": tvariant,
	}
}

func splitPlatform(p string) (os, arch, variant string) {
	parts := append(strings.SplitN(p, "/", 3), "", "", "")
	return parts[0], parts[1], parts[2]
}

// resolveMeta gives the ARGs before the first FROM their values: the
// --build-arg value, else the default (which may use earlier ones).
func (j *job) resolveMeta() error {
	j.meta = j.platformArgs()
	for _, a := range j.df.MetaArgs {
		for _, def := range a.Args {
			if v, ok := j.buildArg(def.Key); ok {
				j.meta[def.Key] = v
				continue
			}
			if !def.HasDefault {
				delete(j.meta, def.Key)
				continue
			}
			v, err := j.lex.Word(def.Default, j.metaLookup)
			if err != nil {
				return fmt.Errorf("%s:%d: ARG %s: %w", j.df.File.Name, a.Line, def.Key, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error()))
			}
			j.meta[def.Key] = v
		}
	}
	return nil
}

// metaLookup resolves variables in FROM lines: the global ARGs.
func (j *job) metaLookup(name string) (string, bool) {
	v, ok := j.meta[name]
	return v, ok
}

// buildArg returns a --build-arg value and marks the argument consumed.
func (j *job) buildArg(name string) (string, bool) {
	j.mu.Lock()
	j.used[name] = true
	j.mu.Unlock()
	v, ok := j.opts.BuildArgs[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// unusedArgs are the --build-args no ARG declared, proxies excepted.
func (j *job) unusedArgs() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for k := range j.opts.BuildArgs {
		if !j.used[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
