package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// registryCommands are pull, push, login and logout.
func registryCommands(e *env) []*cobra.Command {
	cmds := []*cobra.Command{
		newPullCommand(e),
		newPushCommand(e),
		newLoginCommand(e),
		newLogoutCommand(e),
	}
	for _, c := range cmds {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[annotCategory] = "common"
	}
	return cmds
}

// registryAuth returns the X-Registry-Auth value for the registry that ref
// names, from config.json or its credential helper; "" when the user has
// not logged in there.
func registryAuth(ctx context.Context, ref reference.Named) (string, error) {
	dir, err := credentials.Dir()
	if err != nil {
		return "", err
	}
	cfg, err := credentials.Load(dir)
	if err != nil {
		return "", err
	}
	server := reference.Domain(ref)
	a, err := cfg.Get(ctx, server)
	if errors.Is(err, credentials.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	a.ServerAddress = server
	return credentials.EncodeHeader(a)
}

func newPullCommand(e *env) *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %s", strings.TrimPrefix(err.Error(), "invalid reference format: "))
			}
			if all && !reference.IsNameOnly(named) {
				return errors.New("tag can't be used with --all-tags/-a")
			}
			if !all {
				named = reference.TagNameOnly(named)
			}
			opts := client.ImagePullOptions{All: all}
			if platform != "" {
				p, err := parsePlatformFlag(platform)
				if err != nil {
					return err
				}
				opts.Platforms = []ocispec.Platform{p}
			}
			if opts.RegistryAuth, err = registryAuth(cmd.Context(), named); err != nil {
				return err
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			resp, err := c.ImagePull(cmd.Context(), named.String(), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			out := e.stdout
			if quiet {
				out = io.Discard
			}
			if err := newProgressDisplay(out).run(resp); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, named.String())
			return nil
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	flags.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	flags.Bool("disable-content-trust", true, "Skip image verification (always; berth has no content trust)")
	return cmd
}

// parsePlatformFlag reads os[/arch[/variant]].
func parsePlatformFlag(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

func newPushCommand(e *env) *cobra.Command {
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %s", strings.TrimPrefix(err.Error(), "invalid reference format: "))
			}
			if all && !reference.IsNameOnly(named) {
				return errors.New("tag can't be used with --all-tags/-a")
			}
			if !all {
				named = reference.TagNameOnly(named)
			}
			opts := client.ImagePushOptions{All: all}
			if opts.RegistryAuth, err = registryAuth(cmd.Context(), named); err != nil {
				return err
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			resp, err := c.ImagePush(cmd.Context(), named.String(), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			out := e.stdout
			if quiet {
				out = io.Discard
			}
			if err := newProgressDisplay(out).run(resp); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(e.stdout, named.String())
			}
			return nil
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	flags.Bool("disable-content-trust", true, "Skip image signing (always; berth has no content trust)")
	return cmd
}
