package main

import (
	"bytes"
	"strings"
	"testing"

	"natter"
	"natter/client"
	"natter/server"
)

// moderate runs `natter moderate` and returns what it printed, or its error.
func moderate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runModerate(t.Context(), args, &out, &errOut)
	return out.String(), err
}

// TestModerateCommand: an admin bans a user from a room, lists the bans, lifts the ban, suspends
// an account, reinstates it and gives it a new password, all from the command line; each step shows in what the server
// lets the users do. Refusals (no moderator, bad arguments) are errors that change nothing.
func TestModerateCommand(t *testing.T) {
	url := openNatter(t, func(c *server.Config) { c.Admins = []string{"root"} })
	ctx := t.Context()
	bob := accounts(t, url, "root", "bob")
	as := func(name string, args ...string) []string {
		return append(args, "--url", url, "--name", name, "--password", name+"'s password")
	}

	if _, err := moderate(t, as("bob", "ban", "root")...); natter.ErrorCode(err) != natter.EFORBIDDEN {
		t.Fatalf("bob banning root: %v, want forbidden", err)
	}
	for _, bad := range [][]string{{"ban"}, {"ban", "a", "b"}, {"bans", "extra"}, {"kick", "bob"}, {"ban", "bob", "--to", "root"}} {
		if _, err := moderate(t, as("root", bad...)...); err == nil {
			t.Fatalf("natter moderate %q: no error", bad)
		}
	}
	if _, err := moderate(t, as("root", "ban", "bob")...); err != nil {
		t.Fatalf("root bans bob: %v", err)
	}
	if _, err := bob.Send(ctx, "lobby", "hi"); natter.ErrorCode(err) != natter.EFORBIDDEN {
		t.Fatalf("bob's send after the ban: %v, want forbidden", err)
	}
	out, err := moderate(t, as("root", "bans", "--room", "lobby")...)
	if err != nil || !strings.HasPrefix(out, "bob\tby root\t") || !strings.HasSuffix(out, "\tuntil lifted\t\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("bans printed %q, %v; want bob's, by root, until lifted", out, err)
	}
	// Terms: a bad --for is refused before anything is asked; good ones replace the ban's.
	if _, err := moderate(t, as("root", "ban", "--for", "5s", "bob")...); err == nil || !strings.Contains(err.Error(), "--for") {
		t.Fatalf("a ban for 5s: %v, want --for refused", err)
	}
	if _, err := moderate(t, as("root", "ban", "--for", "7d", "--reason", "cool off", "bob")...); err != nil {
		t.Fatalf("root bans bob for a week: %v", err)
	}
	if _, err := bob.Send(ctx, "lobby", "hi"); natter.ErrorCode(err) != natter.EFORBIDDEN || !strings.Contains(err.Error(), "(cool off) until ") {
		t.Fatalf("bob's send after the week's ban: %v, want forbidden with the reason and end", err)
	}
	out, err = moderate(t, as("root", "bans", "--room", "lobby")...)
	if err != nil || !strings.Contains(out, "\tuntil 20") || !strings.HasSuffix(out, "\tcool off\n") {
		t.Fatalf("bans printed %q, %v; want the week's end and the reason", out, err)
	}
	if _, err := moderate(t, as("root", "unban", "bob")...); err != nil {
		t.Fatalf("root lifts bob's ban: %v", err)
	}
	if _, err := bob.Send(ctx, "lobby", "hi"); err != nil {
		t.Fatalf("bob's send after the lift: %v", err)
	}

	if _, err := moderate(t, as("root", "suspend", "bob")...); err != nil {
		t.Fatalf("root suspends bob: %v", err)
	}
	if err := client.New(url).SignIn(ctx, "bob", "bob's password"); natter.ErrorCode(err) != natter.EFORBIDDEN {
		t.Fatalf("bob's sign-in while suspended: %v, want forbidden", err)
	}
	if out, err := moderate(t, as("root", "suspended")...); err != nil || out != "bob\n" {
		t.Fatalf("suspended printed %q, %v; want bob", out, err)
	}
	if _, err := moderate(t, as("root", "suspended", "extra")...); err == nil {
		t.Fatal("suspended with an argument: no error")
	}
	if _, err := moderate(t, as("root", "reinstate", "bob")...); err != nil {
		t.Fatalf("root reinstates bob: %v", err)
	}
	if err := client.New(url).SignIn(ctx, "bob", "bob's password"); err != nil {
		t.Fatalf("bob's sign-in after reinstatement: %v", err)
	}

	// A new password for bob, from a flag and from standard input.
	if _, err := moderate(t, as("root", "reset-password", "bob")...); err == nil {
		t.Fatal("reset-password without a new password: no error")
	}
	if _, err := moderate(t, as("root", "reset-password", "bob", "--new-password", "bob's new one")...); err != nil {
		t.Fatalf("reset-password: %v", err)
	}
	if err := client.New(url).SignIn(ctx, "bob", "bob's new one"); err != nil {
		t.Fatalf("bob's sign-in with the new password: %v", err)
	}
	var printed, errOut bytes.Buffer
	args := as("root", "reset-password", "bob", "--new-password", "-")
	if err := runModerateIn(ctx, args, strings.NewReader("from stdin\n"), &printed, &errOut); err != nil {
		t.Fatalf("reset-password from standard input: %v (%s)", err, errOut.String())
	}
	if err := client.New(url).SignIn(ctx, "bob", "from stdin"); err != nil {
		t.Fatalf("bob's sign-in with the password read from standard input: %v", err)
	}
}

// TestModerateDeleteRoom: `natter moderate delete-room` asks for --yes, deletes the room for its
// moderators only, and the room is gone for its readers.
func TestModerateDeleteRoom(t *testing.T) {
	url := openNatter(t, func(c *server.Config) { c.Admins = []string{"root"} })
	ctx := t.Context()
	bob := accounts(t, url, "root", "bob")
	if _, err := bob.CreateRoom(ctx, "junk", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "junk", "buy now"); err != nil {
		t.Fatal(err)
	}
	as := func(name string, args ...string) []string {
		return append(args, "--url", url, "--name", name, "--password", name+"'s password")
	}
	if _, err := moderate(t, as("root", "delete-room", "--room", "junk")...); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("delete-room without --yes: %v, want it to ask for --yes", err)
	}
	if _, err := moderate(t, as("root", "delete-room", "--room", "junk", "extra", "--yes")...); err == nil {
		t.Fatal("delete-room with an argument: no error")
	}
	if _, err := bob.Messages(ctx, "junk", client.Query{After: 0}); err != nil {
		t.Fatalf("the room after refused deletions: %v", err)
	}
	out, err := moderate(t, as("root", "delete-room", "--room", "junk", "--yes")...)
	if err != nil || out != "deleted room junk\n" {
		t.Fatalf("delete-room printed %q, %v", out, err)
	}
	if _, err := bob.Messages(ctx, "junk", client.Query{After: 0}); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("reading the deleted room: %v, want not_found", err)
	}
	if err := bob.DeleteRoom(ctx, "lobby"); natter.ErrorCode(err) != natter.EFORBIDDEN {
		t.Fatalf("bob deleting the lobby: %v, want forbidden", err)
	}
	if _, err := moderate(t, as("root", "delete-room", "--room", "lobby", "--yes")...); natter.ErrorCode(err) != natter.EINVALID {
		t.Fatalf("deleting the lobby: %v, want invalid", err)
	}
}
