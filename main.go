// Command berth is the container engine, its CLI, its shim and the image
// registry, in one binary:
//
//	berth daemon ...     the engine (Docker Engine API on a unix socket)
//	berth registry ...   the image registry server
//	berth shim ...       one per container, started by the daemon
//	berth <command> ...  the CLI
package main

import (
	"os"
	"path/filepath"

	"berth/cli"
	"berth/daemon"
	registrycmd "berth/registry/cmd"
	"berth/task"
)

func main() {
	// Bind-mounted into --init containers as /sbin/docker-init.
	if filepath.Base(os.Args[0]) == "docker-init" {
		os.Exit(task.InitMain(os.Args[1:]))
	}
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "daemon":
			os.Exit(daemon.Main(args[1:], os.Stdout, os.Stderr))
		case "registry":
			os.Exit(registrycmd.Main(args[1:], os.Stdout, os.Stderr))
		case "shim":
			os.Exit(task.ShimMain(args[1:]))
		}
	}
	os.Exit(cli.Main(args, os.Stdin, os.Stdout, os.Stderr))
}
