package image

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"berth/errdefs"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ImageDelete is `rmi`: naming a tag untags it, and the image goes only when
// nothing names it any more; naming an ID deletes the image (all its tags
// with Force). Conflicts follow Docker's wording and rules.
func (s *Service) ImageDelete(ctx context.Context, name string, opts DeleteOptions) ([]imagetypes.DeleteResponse, error) {
	var out []imagetypes.DeleteResponse
	var doomed []digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		out, doomed = nil, nil
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		id, key, err := st.resolve(name)
		if err != nil {
			return err
		}
		p := &deletePlan{s: s, ctx: ctx, tx: tx, st: st, opts: opts}
		if err := p.run(id, key); err != nil {
			return err
		}
		out, doomed = p.out, p.doomed
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range doomed {
		s.content.Delete(ctx, id)
	}
	out = append(out, s.gcLayers(ctx)...)
	return out, nil
}

// deletePlan decides and records, in one transaction, what an rmi removes;
// snapshots and blobs are removed after the commit.
type deletePlan struct {
	s      *Service
	ctx    context.Context
	tx     *bolt.Tx
	st     *state
	opts   DeleteOptions
	out    []imagetypes.DeleteResponse
	doomed []digest.Digest // config blobs to drop after commit
}

func (p *deletePlan) run(id digest.Digest, key string) error {
	keys := p.st.tagsOf(id)
	if key != "" {
		if err := p.untag(key); err != nil {
			return err
		}
		if len(p.st.tagsOf(id)) > 0 {
			return nil
		}
		// The last tag is gone: delete the image unless something still
		// needs it, in which case it quietly stays as <none>.
		if p.conflict(id) != nil {
			return nil
		}
		return p.remove(id)
	}
	if len(keys) > 1 && !p.opts.Force && multipleRepos(keys) {
		return errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id))
	}
	if err := p.conflict(id); err != nil {
		return err
	}
	for _, k := range keys {
		if err := p.untag(k); err != nil {
			return err
		}
	}
	return p.remove(id)
}

func multipleRepos(keys []string) bool {
	repos := map[string]bool{}
	for _, k := range keys {
		if ref, err := reference.ParseNormalizedNamed(k); err == nil {
			repos[ref.Name()] = true
		}
	}
	return len(repos) > 1
}

// conflict reports why id cannot be deleted: children and running
// containers always block; stopped containers block unless forced.
func (p *deletePlan) conflict(id digest.Digest) error {
	if len(p.st.children(id)) > 0 {
		return errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (cannot be forced) - image has dependent child images", shortID(id))
	}
	users, running := p.s.users(p.ctx, id)
	if running {
		return errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", shortID(id), short(users[0]))
	}
	if len(users) > 0 && !p.opts.Force {
		return errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", shortID(id), short(users[0]))
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// untag removes one reference, and with the last tag of a repository its
// digest references too, as Docker does for pulled images.
func (p *deletePlan) untag(key string) error {
	id := p.st.tags[key]
	if err := p.tx.Bucket(bucketTags).Delete([]byte(key)); err != nil {
		return err
	}
	delete(p.st.tags, key)
	p.out = append(p.out, imagetypes.DeleteResponse{Untagged: familiar(key)})
	if strings.Contains(key, "@") {
		return nil
	}
	name := key[:strings.LastIndex(key, ":")]
	for _, k := range p.st.tagsOf(id) {
		if !strings.Contains(k, "@") && strings.HasPrefix(k, name+":") {
			return nil
		}
	}
	for _, k := range p.st.tagsOf(id) {
		if strings.HasPrefix(k, name+"@") {
			if err := p.untag(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes the image record, then its untagged childless parent
// unless NoPrune.
func (p *deletePlan) remove(id digest.Digest) error {
	parent := p.st.images[id].Parent
	if err := p.tx.Bucket(bucketImages).Delete([]byte(id.String())); err != nil {
		return err
	}
	delete(p.st.images, id)
	p.doomed = append(p.doomed, id)
	p.out = append(p.out, imagetypes.DeleteResponse{Deleted: id.String()})
	if p.opts.NoPrune || parent == "" {
		return nil
	}
	if _, ok := p.st.images[parent]; !ok || len(p.st.tagsOf(parent)) > 0 || p.conflict(parent) != nil {
		return nil
	}
	return p.remove(parent)
}

// gcLayers removes the layers no image uses, top first, and reports each
// removed chain ID. A layer a container still builds on stays until the
// container is removed (its snapshot has children).
func (s *Service) gcLayers(ctx context.Context) []imagetypes.DeleteResponse {
	s.layerMu.Lock()
	defer s.layerMu.Unlock()
	st, err := s.view()
	if err != nil {
		s.log.Error("layer gc", "err", err)
		return nil
	}
	users := st.layerUsers()
	var unused []layerRecord
	for c, l := range st.layers {
		if users[c] == 0 && !s.dist.pinned(c) {
			unused = append(unused, l)
		}
	}
	// Children before parents: deeper chains first.
	depth := func(l layerRecord) int {
		n := 0
		for c := l.Parent; c != ""; c = st.layers[c].Parent {
			n++
		}
		return n
	}
	sort.Slice(unused, func(i, j int) bool { return depth(unused[i]) > depth(unused[j]) })
	var out []imagetypes.DeleteResponse
	for _, l := range unused {
		if err := s.removeLayer(ctx, st, l); err != nil {
			if !errors.Is(err, errdefs.ErrFailedPrecondition) {
				s.log.Warn("layer gc", "layer", l.ChainID, "err", err)
			}
			continue
		}
		out = append(out, imagetypes.DeleteResponse{Deleted: l.ChainID.String()})
	}
	return out
}

func (s *Service) removeLayer(ctx context.Context, st *state, l layerRecord) error {
	if err := s.sn.Remove(ctx, l.ChainID.String()); err != nil && !errdefs.NotFound(err) {
		return fmt.Errorf("layer %s: %w", l.ChainID, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLayers).Delete([]byte(l.ChainID.String()))
	})
	if err != nil {
		return err
	}
	delete(st.layers, l.ChainID)
	for _, other := range st.layers {
		if other.Blob == l.Blob {
			return nil
		}
	}
	if l.Blob != "" {
		s.content.Delete(ctx, l.Blob)
	}
	return nil
}

// ImagesPrune removes dangling images, or with all every image no container
// uses, and reports what it freed.
func (s *Service) ImagesPrune(ctx context.Context, all bool, filters map[string][]string) (imagetypes.PruneReport, error) {
	report := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	before, err := s.layerSizes()
	if err != nil {
		return report, err
	}
	for {
		st, err := s.view()
		if err != nil {
			return report, err
		}
		f, err := newFilter(st, withoutDangling(filters))
		if err != nil {
			return report, err
		}
		victim := pruneCandidate(ctx, s, st, f, all)
		if victim == "" {
			break
		}
		resp, err := s.ImageDelete(ctx, victim.String(), DeleteOptions{Force: true})
		if err != nil {
			return report, err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, resp...)
	}
	after, err := s.layerSizes()
	if err != nil {
		return report, err
	}
	for c, size := range before {
		if _, ok := after[c]; !ok {
			report.SpaceReclaimed += uint64(size)
		}
	}
	return report, nil
}

func withoutDangling(f map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range f {
		if k != "dangling" {
			out[k] = v
		}
	}
	return out
}

func pruneCandidate(ctx context.Context, s *Service, st *state, f *filter, all bool) digest.Digest {
	ids := make([]string, 0, len(st.images))
	for id := range st.images {
		ids = append(ids, id.String())
	}
	sort.Strings(ids)
	for _, sid := range ids {
		id := digest.Digest(sid)
		keys := st.tagsOf(id)
		if (!all && len(keys) > 0) || len(st.children(id)) > 0 || !f.match(st.images[id], keys) {
			continue
		}
		if users, _ := s.users(ctx, id); len(users) > 0 {
			continue
		}
		return id
	}
	return ""
}

func (s *Service) layerSizes() (map[digest.Digest]int64, error) {
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]int64{}
	for c, l := range st.layers {
		out[c] = l.Size
	}
	return out, nil
}

// CollectLayers removes layers that neither an image nor a container uses
// any more; the container service calls it after removing a container,
// since an image deleted with -f keeps its layers while containers use them.
func (s *Service) CollectLayers(ctx context.Context) {
	s.gcLayers(ctx)
}
