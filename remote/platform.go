package remote

import (
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NormalizePlatform fills in the host's OS and architecture when p leaves
// them empty, and spells architectures and variants the OCI way
// (x86_64 → amd64, aarch64 → arm64, arm → arm/v7).
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	if p.OS == "" {
		p.OS = runtime.GOOS
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	p.OS = strings.ToLower(p.OS)
	p.Architecture, p.Variant = normalizeArch(strings.ToLower(p.Architecture), strings.ToLower(p.Variant))
	return p
}

func normalizeArch(arch, variant string) (string, string) {
	switch arch {
	case "x86_64", "x86-64", "amd64":
		if variant == "v1" {
			variant = ""
		}
		return "amd64", variant
	case "aarch64", "arm64":
		if variant == "8" || variant == "v8" {
			variant = ""
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
		return "arm", variant
	case "i386", "i686", "386":
		return "386", variant
	}
	return arch, variant
}

// platformRank says how well an image for have suits a host that wants
// want: 0 is no match, higher is better. A host runs images of its own
// variant best and older variants of the same architecture too (an amd64
// v3 host runs v2 and v1 images; arm v7 runs v6 and v5).
func platformRank(want, have ocispec.Platform) int {
	have = NormalizePlatform(have)
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return 0
	}
	if have.Variant == want.Variant {
		return 100
	}
	wv, hv := variantLevel(want.Variant), variantLevel(have.Variant)
	if wv < 0 || hv < 0 || hv > wv {
		return 0
	}
	return 50 + hv
}

// variantLevel orders v1 < v2 < ...; "" is the baseline (level 1) and
// anything unparseable is -1.
func variantLevel(v string) int {
	if v == "" {
		return 1
	}
	if len(v) >= 2 && v[0] == 'v' {
		n := 0
		for _, r := range v[1:] {
			if r < '0' || r > '9' {
				return -1
			}
			n = n*10 + int(r-'0')
		}
		return n
	}
	return -1
}

// selectPlatform picks the best entry of idx for want, or false. Entries
// without a platform (attestations and other artifacts) never match.
func selectPlatform(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, bool) {
	best, bestRank := ocispec.Descriptor{}, 0
	for _, d := range idx.Manifests {
		if d.Platform == nil || (d.MediaType != "" && !IsManifest(d.MediaType)) {
			continue
		}
		if r := platformRank(want, *d.Platform); r > bestRank {
			best, bestRank = d, r
		}
	}
	return best, bestRank > 0
}

// PlatformString formats p as os/arch[/variant].
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
