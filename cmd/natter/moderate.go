package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"natter"
	"natter/client"
)

const moderateUsage = `usage: natter moderate ACTION [flags] [USER]

  ban USER        bar USER from posting in --room, until lifted or --for a while ("2h",
                  "7d"), with an optional --reason shown to USER and the room
  unban USER      lift USER's ban in --room
  bans            list --room's bans: user, who banned, when, until when, why
  suspend USER    suspend the account USER: its sessions end, it can't sign in (admins only)
  reinstate USER  let the account USER sign in again (admins only)
  suspended       list the suspended accounts (admins only)
  reset-password USER
                  give the account USER the password --new-password (or, with "-", the first
                  line of standard input); its sessions end (admins only)
  delete-room     delete --room and everything in it, for good (its name is never used
                  again); asks for --yes

Sign in with --name and --password as one of the room's moderators (its creator, or an account
the server names with --admins). Every flag can be set as NATTER_<FLAG>.

`

// runModerate implements `natter moderate`: the moderation API from the command line.
func runModerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runModerateIn(ctx, args, os.Stdin, stdout, stderr)
}

func runModerateIn(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, moderateUsage)
		if len(args) == 0 {
			return fmt.Errorf("give an action: ban, unban, bans, suspend, reinstate, suspended, reset-password or delete-room")
		}
		return nil
	}
	action := args[0]
	fs := flag.NewFlagSet("natter moderate "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var acct accountFlags
	acct.register(fs)
	newPassword := fs.String("new-password", "", `reset-password: the new password ("-": read it from standard input)`)
	banFor := fs.String("for", "", `ban: how long ("30m", "2h", "7d"; default: until lifted)`)
	banReason := fs.String("reason", "", "ban: why, shown to the banned user and the room")
	yes := fs.Bool("yes", false, "delete-room: yes, delete the room and everything in it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), moderateUsage)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	wantUser := action != "bans" && action != "suspended" && action != "delete-room"
	switch action {
	case "ban", "unban", "bans", "suspend", "reinstate", "suspended", "reset-password", "delete-room":
	default:
		fs.Usage()
		return fmt.Errorf("unknown action %q: ban, unban, bans, suspend, reinstate, suspended, reset-password or delete-room", action)
	}
	if action == "delete-room" && !*yes {
		return fmt.Errorf("delete-room deletes room %q and everything in it, for good: add --yes", acct.room)
	}
	if action == "reset-password" {
		if *newPassword == "-" {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read the new password from standard input: %v", err)
			}
			*newPassword = strings.TrimRight(line, "\r\n")
		}
		if *newPassword == "" {
			return fmt.Errorf("reset-password needs --new-password (or NATTER_NEW_PASSWORD, or - for standard input)")
		}
	}
	if wantUser && len(rest) != 1 {
		return fmt.Errorf("%s takes one user name, got %d arguments", action, len(rest))
	}
	if !wantUser && len(rest) != 0 {
		return fmt.Errorf("%s takes no arguments, got %q", action, rest)
	}
	if acct.to != "" {
		return fmt.Errorf("--to: direct conversations have no moderators")
	}
	c, err := acct.signIn(ctx)
	if err != nil {
		return err
	}
	defer signOut(ctx, c)
	switch action {
	case "ban":
		d, perr := natter.ParseBanFor(*banFor)
		if perr != nil {
			return fmt.Errorf("--for: %s", natter.ErrorMessage(perr))
		}
		err = c.BanWith(ctx, acct.room, rest[0], client.BanTerms{For: d, Reason: *banReason})
	case "unban":
		err = c.Unban(ctx, acct.room, rest[0])
	case "suspend":
		err = c.Suspend(ctx, rest[0], true)
	case "reinstate":
		err = c.Suspend(ctx, rest[0], false)
	case "reset-password":
		err = c.ResetPassword(ctx, rest[0], *newPassword)
	case "delete-room":
		if err = c.DeleteRoom(ctx, acct.room); err == nil {
			fmt.Fprintf(stdout, "deleted room %s\n", acct.room)
		}
	case "suspended":
		names, serr := c.Suspended(ctx)
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
		err = serr
	case "bans":
		bans, berr := c.Bans(ctx, acct.room)
		for _, b := range bans {
			until := "until lifted"
			if !b.Until.IsZero() {
				until = "until " + b.Until.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\tby %s\t%s\t%s\t%s\n", b.User, b.By, b.At.UTC().Format(time.RFC3339), until, b.Reason)
		}
		err = berr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}
