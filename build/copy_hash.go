package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"
)

// describe is the history comment of a COPY or ADD, as Docker writes it:
// "COPY file:<digest> in /dst " for one file, "dir:" for one directory,
// "multi:" for several sources. The digest covers every file's path,
// type, mode, link target and content, so it changes exactly when what
// the step reads does; times and owners are not part of it (COPY sets
// owners itself).
func (op *copyOp) describe(ctx context.Context) (string, error) {
	if op.comment != "" {
		return op.comment, nil
	}
	var sums []string
	kind := "file"
	for _, src := range op.sources {
		sum, err := src.digest(ctx)
		if err != nil {
			return "", err
		}
		sums = append(sums, sum)
		if src.info != nil && src.info.IsDir() {
			kind = "dir"
		}
	}
	sum := sums[0]
	if len(sums) > 1 {
		kind = "multi"
		h := sha256.New()
		for _, s := range sums {
			io.WriteString(h, s+"\n")
		}
		sum = hex.EncodeToString(h.Sum(nil))
	}
	// Docker's line, quirk included: --chown runs into the source kind.
	chown := ""
	if op.chown != "" {
		chown = "--chown=" + op.chown
	}
	op.comment = fmt.Sprintf("%s %s%s:%s in %s ", op.in.Keyword, chown, kind, sum, op.written)
	return op.comment, nil
}

func (src source) digest(ctx context.Context) (string, error) {
	h := sha256.New()
	switch {
	case src.tree == nil:
		fmt.Fprintf(h, "heredoc %s %o %d\n", src.name, src.mode, len(src.data))
		h.Write(src.data)
	case src.info.IsDir():
		err := walkTree(src.tree, src.rel, func(rel string, fi fs.FileInfo) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return hashEntry(h, src.tree, strings.TrimPrefix(strings.TrimPrefix(rel, src.rel), "/"), rel, fi)
		})
		if err != nil {
			return "", fmt.Errorf("read %s: %w", src.name, err)
		}
	default:
		if err := hashEntry(h, src.tree, src.name, src.rel, src.info); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashEntry adds one file to a digest: its name, type, mode, link target,
// size and the digest of its content.
func hashEntry(h hash.Hash, tree fileTree, name, rel string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = tree.Readlink(rel); err != nil {
			return err
		}
	}
	sum := ""
	if fi.Mode().IsRegular() {
		var ok bool
		if sum, ok = tree.Sum(rel); !ok {
			r, err := tree.Open(rel)
			if err != nil {
				return err
			}
			c := sha256.New()
			_, err = io.Copy(c, r)
			r.Close()
			if err != nil {
				return err
			}
			sum = hex.EncodeToString(c.Sum(nil))
		}
	}
	fmt.Fprintf(h, "%q %s %o %q %d %s\n", name, fi.Mode().Type(), fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), link, fi.Size(), sum)
	return nil
}
