package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"berth/errdefs"
	"berth/registry/auth"
)

func user(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("user: want add, passwd, rm or ls: %w", errdefs.ErrInvalidArgument)
	}
	fl := newFlagSet("user "+args[0], stderr)
	var cf configFlags
	cf.register(fl)
	admin := fl.Bool("admin", false, "add: the user may write anywhere")
	public := fl.Bool("public", false, "add: anyone may pull from the user's namespace")
	pwStdin := fl.Bool("password-stdin", false, "read the password from stdin without prompting")
	asJSON := fl.Bool("json", false, "ls: print JSON")
	if err := parse(fl, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	d, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	acc := auth.NewAccounts(d)
	name := fl.Arg(0)
	needName := func() error {
		if fl.NArg() != 1 {
			return fmt.Errorf("user %s: want exactly one user name: %w", args[0], errdefs.ErrInvalidArgument)
		}
		return nil
	}
	switch args[0] {
	case "add", "passwd":
		if err := needName(); err != nil {
			return err
		}
		pw, err := readPassword(stdin, stderr, !*pwStdin)
		if err != nil {
			return err
		}
		if args[0] == "add" {
			return acc.Add(ctx, name, pw, *admin, *public)
		}
		return acc.SetPassword(ctx, name, pw)
	case "rm":
		if err := needName(); err != nil {
			return err
		}
		return acc.Remove(ctx, name)
	case "ls":
		users, err := acc.List(ctx)
		if err != nil {
			return err
		}
		return printUsers(stdout, users, *asJSON)
	}
	return fmt.Errorf("user %q: want add, passwd, rm or ls: %w", args[0], errdefs.ErrInvalidArgument)
}

func printUsers(w io.Writer, users []auth.UserInfo, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(users)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADMIN\tNAMESPACE")
	for _, u := range users {
		vis := "private"
		if u.Public {
			vis = "public"
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\n", u.Name, u.Admin, vis)
	}
	return tw.Flush()
}
