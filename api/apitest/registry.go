package apitest

import (
	"context"
	"sync"

	"berth/errdefs"
	"berth/image"
	"berth/remote/credentials"

	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry is an in-memory DistributionBackend and AuthBackend: pulls and
// pushes replay Progress and then return Err; logins succeed for Users.
type Registry struct {
	mu sync.Mutex
	// Progress is replayed by every pull and push, then Err is returned.
	Progress []image.Progress
	Err      error
	// Users maps user names to passwords; Token, when set, is returned as
	// the identity token of a successful login.
	Users map[string]string
	Token string
	// Calls records each pull and push: the name and the options.
	Pulls  []PullCall
	Pushes []PushCall
	Logins []credentials.AuthConfig
}

// PullCall is one recorded PullImage.
type PullCall struct {
	Name string
	Opts image.PullOptions
}

// PushCall is one recorded PushImage.
type PushCall struct {
	Name string
	Opts image.PushOptions
}

func (r *Registry) replay(progress image.ProgressFunc) error {
	for _, p := range r.Progress {
		progress(p)
	}
	return r.Err
}

// PullImage records the call and replays the script.
func (r *Registry) PullImage(_ context.Context, name string, opts image.PullOptions, progress image.ProgressFunc) error {
	r.mu.Lock()
	r.Pulls = append(r.Pulls, PullCall{Name: name, Opts: opts})
	r.mu.Unlock()
	return r.replay(progress)
}

// PushImage records the call and replays the script.
func (r *Registry) PushImage(_ context.Context, name string, opts image.PushOptions, progress image.ProgressFunc) error {
	r.mu.Lock()
	r.Pushes = append(r.Pushes, PushCall{Name: name, Opts: opts})
	r.mu.Unlock()
	return r.replay(progress)
}

// DistributionInspect describes every name as a one-platform manifest.
func (r *Registry) DistributionInspect(_ context.Context, name string, _ credentials.AuthConfig) (registry.DistributionInspect, error) {
	if r.Err != nil {
		return registry.DistributionInspect{}, r.Err
	}
	return registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(name), Size: 527},
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}},
	}, nil
}

// Login accepts the users in Users, by password or by Token.
func (r *Registry) Login(_ context.Context, server string, a credentials.AuthConfig) (string, error) {
	r.mu.Lock()
	r.Logins = append(r.Logins, a)
	r.mu.Unlock()
	if pw, ok := r.Users[a.Username]; ok && (pw == a.Password || (r.Token != "" && a.IdentityToken == r.Token)) {
		return r.Token, nil
	}
	return "", errdefs.Errorf(errdefs.ErrUnauthenticated, "login to %s: unauthorized", server)
}
