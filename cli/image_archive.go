package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// archiveCommands are save and load, at the top level and under image.
func archiveCommands(e *env) []*cobra.Command {
	return []*cobra.Command{
		managementCommand(e, "image", "Manage images", newSaveCommand(e), newLoadCommand(e)),
		newSaveCommand(e),
		newLoadCommand(e),
	}
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newSaveCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSave(cmd, e, output, args)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return aliases(cmd, "berth image save", "berth save")
}

// runSave streams the archive to stdout or, with -o, to a temporary file
// beside the target that is renamed over it once complete, so a failed
// save never leaves a short archive behind (and the file is 0600, as
// docker's is).
func runSave(cmd *cobra.Command, e *env, output string, names []string) error {
	if output == "" && isTerminal(e.stdout) {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	if output != "" {
		if err := checkOutputPath(output); err != nil {
			return fmt.Errorf("failed to save image: %w", err)
		}
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	rc, err := c.ImageSave(cmd.Context(), names)
	if err != nil {
		return err
	}
	defer rc.Close()
	if output == "" {
		_, err = io.Copy(e.stdout, rc)
		return err
	}
	return copyToFile(output, rc)
}

// checkOutputPath refuses what docker refuses before contacting the daemon:
// a missing parent directory, a directory, a device.
func checkOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("invalid output path: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("invalid output path: %w", &fs.PathError{Op: "stat", Path: dir, Err: syscall.ENOTDIR})
	}
	st, err = os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("invalid output path: %w", err)
	case st.IsDir():
		return errors.New("cannot write to a directory")
	case st.Mode()&fs.ModeCharDevice != 0:
		return errors.New("cannot write to a character device file")
	case st.Mode()&fs.ModeDevice != 0:
		return errors.New("cannot write to a block device file")
	}
	return nil
}

func copyToFile(p string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".berth_temp_")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func newLoadCommand(e *env) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd, e, input, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return aliases(cmd, "berth image load", "berth load")
}

// runLoad sends the archive and shows the daemon's messages: progress bars
// on a terminal; elsewhere, like docker, only the "Loaded image" lines.
func runLoad(cmd *cobra.Command, e *env, input string, quiet bool) error {
	src := e.stdin
	if input == "" && isTerminal(e.stdin) {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	if input != "" {
		f, err := os.Open(input)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	if !isTerminal(e.stdout) {
		quiet = true
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	res, err := c.ImageLoad(cmd.Context(), src, client.ImageLoadWithQuiet(quiet))
	if err != nil {
		return err
	}
	defer res.Close()
	return newProgressDisplay(e.stdout).run(res)
}
