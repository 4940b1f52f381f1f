package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// The copy rules of `docker cp`, whose wording the user sees.
var (
	errNoSuchDirectory = errors.New("no such directory")
	errCannotCopyDir   = errors.New("cannot copy directory")
)

type cpOptions struct {
	archive, followLink, quiet bool
}

func newCpCommand(e *env) *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			case srcCtr != "":
				return copyFromContainer(cmd.Context(), e, srcCtr, src, dst, o)
			}
			return copyToContainer(cmd.Context(), e, src, dstCtr, dst, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg tells "container:path" from a local path: an absolute path or
// one starting with "." is local even if it holds a colon.
func splitCpArg(arg string) (container, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(c, ".") {
		return "", arg
	}
	return c, p
}

// copied reports the bytes moved, on a terminal only, as docker does.
func (e *env) copied(o cpOptions, n int64, dst string) {
	if _, isTerm := terminalFd(e.stderr); isTerm && !o.quiet {
		fmt.Fprintf(e.stderr, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), dst)
	}
}

// countingReader counts the bytes a copy moved.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func copyFromContainer(ctx context.Context, e *env, ctr, src, dst string, o cpOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	orig := src
	if o.followLink {
		if src, err = resolveContainerLink(ctx, c, ctr, src); err != nil {
			return err
		}
	}
	res, err := c.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return errors.New(e.message(err))
	}
	defer res.Content.Close()
	if strings.HasSuffix(src, "/") && !res.Stat.Mode.IsDir() {
		return fmt.Errorf("%s: not a directory", src)
	}
	in := &countingReader{r: res.Content}
	if dst == "-" {
		_, err := io.Copy(e.stdout, in)
		return err
	}
	root := res.Stat.Name
	if res.Stat.Mode.IsDir() && (strings.HasSuffix(src, "/.") || src == ".") {
		root = "."
	}
	dir, name, err := localTarget(dst, res.Stat.Mode.IsDir())
	if err != nil {
		return err
	}
	if name == "" && src != orig {
		name = path.Base(orig) // a followed link keeps its own name
	}
	if err := extractTar(in, dir, root, name); err != nil {
		return err
	}
	e.copied(o, in.n, dst)
	return nil
}

// resolveContainerLink follows a symbolic link at src (-L), relative to
// the link's directory, to what it names.
func resolveContainerLink(ctx context.Context, c *client.Client, ctr, src string) (string, error) {
	for range 40 {
		st, err := c.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: src})
		if err != nil || st.Stat.Mode&os.ModeSymlink == 0 {
			return src, nil
		}
		target := st.Stat.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(src), target)
		}
		src = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", src)
}

// localTarget applies docker's rules to a local destination: the
// directory to extract into and the name the copied root takes there ("":
// its own, which for a "/." source means its contents go directly in).
func localTarget(dst string, srcIsDir bool) (dir, name string, err error) {
	fi, statErr := os.Stat(dst)
	exists := statErr == nil
	trailing := strings.HasSuffix(dst, string(os.PathSeparator))
	switch {
	case !exists && !errors.Is(statErr, os.ErrNotExist):
		return "", "", statErr
	case exists && fi.IsDir():
		return dst, "", nil
	case exists && srcIsDir:
		return "", "", errCannotCopyDir
	case exists:
		return filepath.Dir(filepath.Clean(dst)), filepath.Base(dst), nil
	case trailing && !srcIsDir:
		return "", "", errNoSuchDirectory
	}
	return filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst)), nil
}

func copyToContainer(ctx context.Context, e *env, src, ctr, dst string, o cpOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	st, statErr := c.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
	dstExists := statErr == nil
	dstIsDir := dstExists && st.Stat.Mode.IsDir()
	if src == "-" {
		if !dstIsDir {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dst)
		}
		in := &countingReader{r: e.stdinReader()}
		if _, err := c.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dst, Content: in, CopyUIDGID: o.archive}); err != nil {
			return errors.New(e.message(err))
		}
		e.copied(o, in.n, ctr+":"+dst)
		return nil
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	fi, err := statLocal(abs, o.followLink)
	if err != nil {
		return err
	}
	if strings.HasSuffix(src, string(os.PathSeparator)) && !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", src)
	}
	dir, name, err := containerTarget(dst, dstExists, dstIsDir, fi.IsDir(), filepath.Base(abs))
	if err != nil {
		return err
	}
	if fi.IsDir() && dstIsDir && (strings.HasSuffix(src, "/.") || src == ".") {
		name = "" // the contents, not the directory itself
	}
	in := &countingReader{r: tarLocal(abs, name, o.followLink)}
	if _, err := c.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dir, Content: in, CopyUIDGID: o.archive}); err != nil {
		return errors.New(e.message(err))
	}
	e.copied(o, in.n, ctr+":"+dst)
	return nil
}

func statLocal(p string, follow bool) (os.FileInfo, error) {
	if follow {
		return os.Stat(p)
	}
	return os.Lstat(p)
}

// containerTarget applies the rules to a container destination; the
// daemon reports a missing parent directory itself.
func containerTarget(dst string, exists, isDir, srcIsDir bool, srcBase string) (dir, name string, err error) {
	switch {
	case exists && isDir:
		return dst, srcBase, nil
	case exists && srcIsDir:
		return "", "", errCannotCopyDir
	case !exists && strings.HasSuffix(dst, "/"):
		return "", "", errNoSuchDirectory
	}
	clean := path.Clean("/" + dst)
	return path.Dir(clean), path.Base(clean), nil
}
