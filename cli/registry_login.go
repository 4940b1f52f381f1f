package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"berth/remote/credentials"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newLoginCommand(e *env) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long: `Authenticate to a registry.
Defaults to Docker Hub if no server is specified.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := credentials.DockerHubKey
			if len(args) == 1 {
				server = args[0]
			}
			if password != "" {
				fmt.Fprintln(e.stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
			}
			if passwordStdin {
				if user == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				data, err := io.ReadAll(e.stdin)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			return e.login(cmd.Context(), server, user, password)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&user, "username", "u", "", "Username")
	flags.StringVarP(&password, "password", "p", "", "Password or Personal Access Token (PAT)")
	flags.BoolVar(&passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// login validates credentials through the daemon's /auth and stores them:
// in the credential helper config.json names for server, else in
// config.json itself. Without a username and password it first tries what
// is stored, then asks on the terminal.
func (e *env) login(ctx context.Context, server, user, password string) error {
	dir, err := credentials.Dir()
	if err != nil {
		return err
	}
	cfg, err := credentials.Load(dir)
	if err != nil {
		return err
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	key := credentials.ServerKey(server)
	if user == "" && password == "" {
		if stored, err := cfg.Get(ctx, key); err == nil {
			fmt.Fprintln(e.stdout, "Authenticating with existing credentials...")
			if _, err := c.RegistryLogin(ctx, loginOptions(server, stored)); err == nil {
				fmt.Fprintln(e.stdout, "Login Succeeded")
				return nil
			} else {
				fmt.Fprintf(e.stderr, "Login did not succeed, error: %s\n", e.message(err))
			}
		}
	}
	if user == "" || password == "" {
		if user, password, err = e.prompt(server, user); err != nil {
			return err
		}
	}
	a := credentials.AuthConfig{Username: user, Password: password, ServerAddress: server}
	res, err := c.RegistryLogin(ctx, loginOptions(server, a))
	if err != nil {
		return err
	}
	if res.Auth.IdentityToken != "" {
		a.Password, a.IdentityToken = "", res.Auth.IdentityToken
	}
	if err := cfg.Store(ctx, key, a); err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if err := cfg.Save(); err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if cfg.CredsStore == "" && cfg.CredHelpers[key] == "" {
		fmt.Fprintf(e.stderr, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", filepath.Join(dir, "config.json"))
	}
	fmt.Fprintln(e.stdout, "Login Succeeded")
	return nil
}

func loginOptions(server string, a credentials.AuthConfig) client.RegistryLoginOptions {
	return client.RegistryLoginOptions{Username: a.Username, Password: a.Password, ServerAddress: server,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

// prompt asks for what the flags left out; it needs a terminal.
func (e *env) prompt(server, user string) (string, string, error) {
	in, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", "", errors.New("Error: Cannot perform an interactive login from a non TTY device")
	}
	r := bufio.NewReader(in)
	if user == "" {
		fmt.Fprintf(e.stdout, "Username: ")
		line, err := r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		if user = strings.TrimSpace(line); user == "" {
			return "", "", errors.New("Error: Non-null Username Required")
		}
	}
	fmt.Fprintf(e.stdout, "Password: ")
	pw, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(e.stdout)
	if err != nil {
		return "", "", err
	}
	if len(pw) == 0 {
		return "", "", errors.New("Error: Password Required")
	}
	return user, string(pw), nil
}

func newLogoutCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long: `Log out from a registry.
If no server is specified, the default is defined by the daemon.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := credentials.DockerHubKey
			if len(args) == 1 {
				server = args[0]
			}
			dir, err := credentials.Dir()
			if err != nil {
				return err
			}
			cfg, err := credentials.Load(dir)
			if err != nil {
				return err
			}
			key := credentials.ServerKey(server)
			if _, err := cfg.Get(cmd.Context(), key); errors.Is(err, credentials.ErrNotFound) {
				fmt.Fprintf(e.stdout, "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(e.stdout, "Removing login credentials for %s\n", key)
			if err := cfg.Erase(cmd.Context(), key); err != nil {
				fmt.Fprintf(e.stderr, "WARNING: could not erase credentials:\n%s: %v\n", key, err)
				return nil
			}
			return cfg.Save()
		},
	}
}
