// Package version holds what the build stamps into the binary
// (go build -ldflags "-X berth/version.GitCommit=...").
package version

// Set at build time; the defaults describe a plain `go build`.
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
	BuildTime = ""
)
