// Command mkbusybox writes the busybox base image's root filesystem as a tar
// on stdout, built offline from Debian's busybox-static, for
// `berth import - busybox:latest`.
package main

import (
	"bufio"
	"fmt"
	"os"

	"berth/testutil"
)

func main() {
	src := testutil.BusyboxPath
	if len(os.Args) > 1 {
		src = os.Args[1]
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if err := testutil.WriteBusyboxTar(w, src); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
}
