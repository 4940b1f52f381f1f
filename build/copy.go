package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"berth/build/dockerfile"
	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

// source is one thing a COPY or ADD puts into the image.
type source struct {
	tree    fileTree    // where it is; nil for a heredoc
	rel     string      // its path in tree, symlinks resolved
	name    string      // its name under a directory destination
	info    fs.FileInfo // of rel (nil for a heredoc)
	data    []byte      // a heredoc's content
	archive bool        // ADD: a local tar to extract at the destination
	mode    fs.FileMode // heredocs and downloads
}

// copyOp is a COPY or ADD with its arguments expanded and its sources
// found.
type copyOp struct {
	in      *dockerfile.Copy
	sources []source
	written string // the destination as expanded, for the history line
	dest    string // absolute, in the image
	destDir bool   // the destination names a directory
	comment string // "COPY file:<digest> in <dest> ", once computed
	chown   string
	chmod   fs.FileMode
	hasMode bool
	from    digest.Digest // --from image; "" for the context
	fromSet bool
}

// copy runs COPY and ADD.
func (s *stage) copy(ctx context.Context, in *dockerfile.Copy) error {
	op, err := s.prepareCopy(ctx, in)
	if err != nil {
		return err
	}
	if op.fromSet {
		// An image's files never change: its ID stands for their content,
		// so a cache hit needs no mount.
		key := stepKey{Parent: s.id, Config: s.cfg.Config, Author: s.cfg.Author,
			CreatedBy: fmt.Sprintf("%s --from=%s %q %s", in.Keyword, op.from, in.Sources, op.dest), Extra: op.extra()}
		return s.commit(ctx, key, func(ctx context.Context) (digest.Digest, error) {
			var id digest.Digest
			err := s.j.b.withRootfs(ctx, op.from, func(root string) error {
				if err := op.findSources(ctx, s, dirTree{root}, false); err != nil {
					return err
				}
				var err error
				id, err = s.storeCopy(ctx, op)
				return err
			})
			return id, err
		})
	}
	if err := op.findSources(ctx, s, s.j.bc, true); err != nil {
		return err
	}
	comment, err := op.describe(ctx)
	if err != nil {
		return err
	}
	createdBy := strings.Join(append(s.shell(), "#(nop) "+comment), " ")
	key := stepKey{Parent: s.id, Config: s.cfg.Config, Author: s.cfg.Author, CreatedBy: createdBy, Extra: op.extra()}
	return s.commit(ctx, key, func(ctx context.Context) (digest.Digest, error) {
		return s.storeCopy(ctx, op)
	})
}

func (op *copyOp) extra() string {
	return fmt.Sprintf("chown=%s chmod=%o/%v", op.chown, op.chmod, op.hasMode)
}

// prepareCopy expands the instruction's words and checks its shape.
func (s *stage) prepareCopy(ctx context.Context, in *dockerfile.Copy) (*copyOp, error) {
	op := &copyOp{in: in}
	dest, err := s.word(in.Dest)
	if err != nil {
		return nil, err
	}
	op.written = dest
	op.destDir = strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join("/", s.cfg.Config.WorkingDir, dest)
	}
	op.dest = path.Clean(dest)
	if op.dest == "/" {
		op.destDir = true
	}
	if op.chown, err = s.word(in.Chown); err != nil {
		return nil, err
	}
	if in.Chmod != "" {
		m, _ := strconv.ParseUint(in.Chmod, 8, 32)
		op.chmod, op.hasMode = fs.FileMode(m&0o777)|fileModeBits(uint32(m)), true
	}
	if in.From != "" {
		from, err := s.word(in.From)
		if err != nil {
			return nil, err
		}
		if op.from, err = s.j.copyFrom(ctx, from, s.st.Index, s.out); err != nil {
			return nil, err
		}
		op.fromSet = true
	}
	if in.Checksum != "" {
		if _, err := digest.Parse(in.Checksum); err != nil {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid checksum %s: %v", in.Checksum, err)
		}
	}
	return op, nil
}

// fileModeBits turns setuid, setgid and sticky octal bits into Go's.
func fileModeBits(m uint32) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// copyFrom resolves COPY --from: an earlier stage by name or index, else
// an image, pulled if missing.
func (j *job) copyFrom(ctx context.Context, from string, current int, out *stageOutput) (digest.Digest, error) {
	if d, ok := j.stageRef(from, current); ok {
		r := j.results[d]
		if r == nil {
			return "", fmt.Errorf("stage %s was not built: %w", from, errdefs.ErrFailedPrecondition)
		}
		<-r.done
		return r.id, nil
	}
	if n, err := strconv.Atoi(from); err == nil {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid from flag value %d: index out of bounds", n)
	}
	id, err := j.baseImage(ctx, from, "", out)
	if err != nil {
		return "", fmt.Errorf("invalid from flag value %s: %w", from, stageHint(from, err))
	}
	return id, nil
}

// stageHint makes the error of a missing image whose name could be a
// stage's say both: a misspelt stage name ends up as a pull.
func stageHint(name string, err error) error {
	if err == nil || strings.ContainsAny(name, "/:@.") {
		return err
	}
	return fmt.Errorf("no build stage named %s before this one, and no image %s: %w", name, name, err)
}

// findSources expands and finds every source in tree: the context (where
// paths may not climb out) or an image's root filesystem.
func (op *copyOp) findSources(ctx context.Context, s *stage, tree fileTree, isContext bool) error {
	op.sources = nil
	heredocs := map[string]dockerfile.Heredoc{}
	for _, h := range op.in.Heredocs {
		heredocs[h.Name] = h
	}
	for _, raw := range op.in.Sources {
		if src, ok, err := s.heredocSource(raw, heredocs); ok || err != nil {
			if err != nil {
				return err
			}
			op.sources = append(op.sources, src)
			continue
		}
		word, err := s.word(raw)
		if err != nil {
			return err
		}
		if isURL(word) {
			if !op.in.Add {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "source can't be a URL for COPY")
			}
			src, err := s.j.download(ctx, word, op.in.Checksum)
			if err != nil {
				return err
			}
			op.sources = append(op.sources, src)
			continue
		}
		found, err := op.match(ctx, tree, word, isContext)
		if err != nil {
			return err
		}
		op.sources = append(op.sources, found...)
	}
	if (len(op.sources) > 1 || len(op.in.Sources) > 1) && !op.destDir {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "When using %s with more than one source file, the destination must be a directory and end with a /", op.in.Keyword)
	}
	return nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// heredocSource turns a "<<NAME" source into the heredoc's file.
func (s *stage) heredocSource(raw string, heredocs map[string]dockerfile.Heredoc) (source, bool, error) {
	name, ok := strings.CutPrefix(raw, "<<")
	if !ok {
		return source{}, false, nil
	}
	name = strings.Trim(strings.TrimPrefix(name, "-"), `"'`)
	h, ok := heredocs[name]
	if !ok {
		return source{}, false, nil
	}
	content := h.Content
	if h.Expand {
		var err error
		if content, err = s.j.lex.Expand(content, s.lookup); err != nil {
			return source{}, true, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
		}
	}
	return source{name: name, data: []byte(content), mode: 0o644}, true, nil
}

// match finds a source path, or every path a wildcard pattern matches.
func (op *copyOp) match(ctx context.Context, tree fileTree, word string, isContext bool) ([]source, error) {
	rel := cleanRel(filepath.ToSlash(word))
	if c := path.Clean(strings.TrimPrefix(filepath.ToSlash(word), "/")); isContext && (c == ".." || strings.HasPrefix(c, "../")) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Forbidden path outside the build context: %s ()", word)
	}
	if !strings.ContainsAny(rel, "*?[") {
		src, err := op.stat(tree, rel, word, isContext)
		if err != nil {
			return nil, err
		}
		return []source{src}, nil
	}
	var out []source
	err := walkTree(tree, "", func(r string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r == "" {
			return nil
		}
		ok, err := path.Match(rel, r)
		if err != nil {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "source pattern %s: %v", word, err)
		}
		if !ok {
			return nil
		}
		src, err := op.stat(tree, r, word, isContext)
		if err != nil {
			return err
		}
		out = append(out, src)
		if fi.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "no source files were specified: %s matches nothing", word)
	}
	return out, nil
}

// stat finds one source, following symlinks without leaving the tree; a
// dangling symlink, or one leading out, is copied as the link it is.
func (op *copyOp) stat(tree fileTree, rel, word string, isContext bool) (source, error) {
	name := path.Base("/" + rel)
	real, err := tree.Resolve(rel)
	if err != nil {
		return source{}, fmt.Errorf("source %s: %w", word, err)
	}
	fi, err := tree.Lstat(real)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		if parent, perr := tree.Resolve(path.Dir("/" + rel)); perr == nil {
			link := cleanRel(parent + "/" + name)
			if li, lerr := tree.Lstat(link); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
				return source{tree: tree, rel: link, name: name, info: li}, nil
			}
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		if isContext {
			return source{}, errdefs.Errorf(errdefs.ErrNotFound, "file not found in build context or excluded by .dockerignore: stat %s: file does not exist", word)
		}
		return source{}, errdefs.Errorf(errdefs.ErrNotFound, "stat %s: file does not exist in the source image", word)
	}
	if err != nil {
		return source{}, fmt.Errorf("source %s: %w", word, err)
	}
	src := source{tree: tree, rel: real, name: name, info: fi}
	if op.in.Add && fi.Mode().IsRegular() && isContext {
		src.archive = isArchive(tree, real)
	}
	return src, nil
}

// storeCopy writes the layer of a COPY or ADD and stores the image.
func (s *stage) storeCopy(ctx context.Context, op *copyOp) (digest.Digest, error) {
	comment, err := op.describe(ctx)
	if err != nil {
		return "", err
	}
	nop := append(s.shell(), "#(nop) "+comment)
	var id digest.Digest
	err = s.j.b.withRootfs(ctx, s.id, func(root string) error {
		w, err := newLayerWriter(root, op)
		if err != nil {
			return err
		}
		id, err = s.storeLayer(ctx, s.cfg, nop, "", w.write)
		return err
	})
	return id, err
}

// imageRel is p's path relative to an image root, for layer entries.
func imageRel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}
