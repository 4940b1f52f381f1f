package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// runtimePaths are the mount points a container runtime creates in a
// container's root filesystem when the image lacks them. Docker keeps them
// out of a RUN's layer with its "-init" layer; the builder drops them from
// the diff instead.
var runtimePaths = []string{"dev", "proc", "sys", "etc/hostname", "etc/hosts", "etc/resolv.conf"}

// layerMask filters a RUN's diff: it drops the empty files and directories
// that exist only because something was mounted there (runtimePaths, the
// RUN's --mount targets, VOLUME paths), and the directories above them
// that the step did not otherwise change. A step that changed nothing
// else so yields an empty layer, as in Docker.
type layerMask struct {
	lower   string // the parent image's root filesystem, "" for scratch
	masked  map[string]bool
	tw      *tar.Writer
	pending []*tar.Header // unchanged directories not written yet, outermost first
}

func newLayerMask(w io.Writer, lower string, targets []string) *layerMask {
	m := &layerMask{lower: lower, masked: map[string]bool{}, tw: tar.NewWriter(w)}
	for _, p := range append(append([]string{}, runtimePaths...), targets...) {
		m.masked[strings.Trim(path.Clean("/"+p), "/")] = true
	}
	return m
}

// filter copies the layer tar r to the mask's writer.
func (m *layerMask) filter(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		m.settle(name)
		switch {
		case m.masked[name] && m.created(name) && (h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg && h.Size == 0):
			continue
		case h.Typeflag == tar.TypeDir && m.unchangedDir(h):
			m.pending = append(m.pending, h)
			continue
		}
		if err := m.write(h, tr); err != nil {
			return err
		}
	}
	m.settle("")
	return m.tw.Close()
}

// settle decides on the pending directories that are not ancestors of
// name: none of their contents was kept, and they did not change, so
// they are dropped.
func (m *layerMask) settle(name string) {
	for len(m.pending) > 0 {
		dir := strings.TrimSuffix(m.pending[len(m.pending)-1].Name, "/")
		if name != "" && strings.HasPrefix(name, dir+"/") {
			return
		}
		m.pending = m.pending[:len(m.pending)-1]
	}
}

// write writes an entry after the pending directories above it.
func (m *layerMask) write(h *tar.Header, r io.Reader) error {
	for _, d := range m.pending {
		if err := m.tw.WriteHeader(d); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	}
	m.pending = m.pending[:0]
	if err := m.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		if _, err := io.Copy(m.tw, r); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	}
	return nil
}

// created reports whether the parent image lacks name.
func (m *layerMask) created(name string) bool {
	if m.lower == "" {
		return true
	}
	_, err := os.Lstat(filepath.Join(m.lower, name))
	return errors.Is(err, os.ErrNotExist)
}

// unchangedDir reports whether a directory entry is in the diff only
// because something below it changed: the parent image has it with the
// same mode and owner and no opaque marker is involved.
func (m *layerMask) unchangedDir(h *tar.Header) bool {
	if m.lower == "" {
		return false
	}
	fi, err := os.Lstat(filepath.Join(m.lower, strings.TrimSuffix(h.Name, "/")))
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return int64(st.Mode&0o7777) == h.Mode&0o7777 && int(st.Uid) == h.Uid && int(st.Gid) == h.Gid && len(h.PAXRecords) == 0
}
