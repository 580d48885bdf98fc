package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"natter/app"
	"natter/client"
	"natter/server"
)

// accounts registers each name at url with the password "NAME's password", and returns a client
// signed in as the last.
func accounts(t *testing.T, url string, names ...string) *client.Client {
	t.Helper()
	for _, name := range names {
		if err := client.New(url).Register(t.Context(), name, name+"'s password"); err != nil {
			t.Fatal(err)
		}
	}
	last := names[len(names)-1]
	c := client.New(url)
	if err := c.SignIn(t.Context(), last, last+"'s password"); err != nil {
		t.Fatal(err)
	}
	return c
}

// openNatter starts natter in-process on a random loopback port for the send and tail tests;
// tweak may change its server's configuration.
func openNatter(t *testing.T, tweak ...func(*server.Config)) string {
	t.Helper()
	sc := server.Config{Guests: true, SendRate: -1}
	for _, f := range tweak {
		f(&sc)
	}
	m, err := app.Open(context.Background(), app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:    "NORMAL",
		Server:  sc,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m.URL()
}

// send runs `natter send` and returns what it printed.
func send(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runSend(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("natter send %q: %v (stderr %s)", args, err, errOut.String())
	}
	return out.String()
}

func TestSendPrintsSeq(t *testing.T) {
	url := openNatter(t)
	if got := send(t, "--url", url, "--room", "lobby", "--name", "ann", "hello", "world"); got != "1\n" {
		t.Fatalf("printed %q; want 1", got)
	}
	// Flags from the environment, and after the text.
	t.Setenv("NATTER_URL", url)
	t.Setenv("NATTER_NAME", "ben")
	if got := send(t, "second", "--room", "lobby"); got != "2\n" {
		t.Fatalf("printed %q; want 2", got)
	}
}

// TestSendLinesFromStdin: `natter send -` sends each line of standard input as a message, in
// order, from one sign-in (the server here allows two a minute: the run's and the reader's); line endings are not part of
// the body, empty lines are skipped, and a line the server refuses is reported while the rest go
// on, and the run then fails.
func TestSendLinesFromStdin(t *testing.T) {
	url := openNatter(t, func(c *server.Config) { c.SignInRate = 2 })
	in := "one\n\ntwo\r\n" + strings.Repeat("x", 5000) + "\nthree"
	var out, errOut bytes.Buffer
	err := runSendFrom(t.Context(), []string{"--url", url, "--name", "ann", "-"}, strings.NewReader(in), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 line(s) not sent") {
		t.Fatalf("error %v; want one line not sent", err)
	}
	if out.String() != "1\n2\n3\n" {
		t.Fatalf("printed %q; want seqs 1, 2, 3", out.String())
	}
	if !strings.Contains(errOut.String(), "line 4: too_large") {
		t.Fatalf("stderr %q; want line 4 refused as too_large", errOut.String())
	}
	c := client.New(url, client.WithRetry(1, 0, 0))
	if err := c.SignIn(t.Context(), "reader", ""); err != nil {
		t.Fatal(err)
	}
	page, err := c.Messages(t.Context(), "lobby", client.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range page.Messages {
		bodies = append(bodies, m.Body)
	}
	if err := c.SignIn(t.Context(), "reader", ""); err == nil {
		t.Fatal("a third sign-in within the minute was not refused: the limit this test relies on is off")
	}
	if strings.Join(bodies, "|") != "one|two|three" {
		t.Fatalf("stored %q; want one, two, three", bodies)
	}
}

func TestSendAndTailRefuseBadInput(t *testing.T) {
	url := openNatter(t)
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		run  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		want string
	}{
		{"send without name", runSend, []string{"--url", url, "hi"}, "--name is required"},
		{"send without text", runSend, []string{"--url", url, "--name", "ann"}, "no message text"},
		{"send to missing room", runSend, []string{"--url", url, "--name", "ann", "--room", "nope", "hi"}, "not_found"},
		{"tail with bad transport", runTail, []string{"--url", url, "--name", "ann", "--transport", "carrier-pigeon"}, "use ws, sse or poll"},
		{"tail of missing room", runTail, []string{"--url", url, "--name", "ann", "--room", "nope"}, "not_found"},
	} {
		err := tt.run(ctx, tt.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestTailPrintsMessagesAsTheyArrive(t *testing.T) {
	for _, tr := range []string{"ws", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			url := openNatter(t, func(c *server.Config) { c.Admins = []string{"ann"} })
			ann := client.New(url)
			if err := ann.Register(t.Context(), "ann", "ann's password"); err != nil {
				t.Fatal(err)
			}
			send(t, "--url", url, "--name", "ann", "--password", "ann's password", "before")
			ctx, stop := context.WithCancel(t.Context())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- runTail(ctx, []string{"--url", url, "--name", "tailer", "--transport", tr, "--after", "0"}, pw, io.Discard)
				pw.Close()
			}()
			lines := bufio.NewScanner(pr)
			next := func() string {
				if !lines.Scan() {
					t.Fatalf("tail output ended: %v", lines.Err())
				}
				return lines.Text()
			}
			if got := next(); got != "[1] ann: before" {
				t.Fatalf("first line %q", got)
			}
			for i := 2; i <= 4; i++ {
				send(t, "--url", url, "--name", "ann", "--password", "ann's password", fmt.Sprint("live ", i))
				if got, want := next(), fmt.Sprintf("[%d] ann: live %d", i, i); got != want {
					t.Fatalf("line %q; want %q", got, want)
				}
			}
			// Edits and deletions say what they change, replies what they answer.
			if err := ann.SignIn(ctx, "ann", "ann's password"); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.Edit(ctx, "lobby", 2, "fixed"); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.Delete(ctx, "lobby", 3); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.Reply(ctx, "lobby", 4, "answered"); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.React(ctx, "lobby", 4, "👍", false); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.React(ctx, "lobby", 4, "👍", true); err != nil {
				t.Fatal(err)
			}
			if _, err := ann.Pin(ctx, "lobby", 4, false); err != nil { // ann is an admin: she moderates the lobby
				t.Fatal(err)
			}
			if _, err := ann.Pin(ctx, "lobby", 4, true); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"[5] ann edited [2]: fixed", "[6] ann deleted [3]", "[7] ann (to [4]): answered", "[8] ann reacted 👍 to [4]", "[9] ann took back 👍 on [4]", "[10] ann pinned [4]", "[11] ann unpinned [4]"} {
				if got := next(); got != want {
					t.Fatalf("line %q; want %q", got, want)
				}
			}
			stop()
			go io.Copy(io.Discard, pr) // let tail finish a write it may have started
			if err := <-done; err != nil {
				t.Fatalf("tail returned %v after the interrupt; want nil", err)
			}
			// Read again, a deleted message has no words left: tail says so.
			ctx2, stop2 := context.WithCancel(t.Context())
			defer stop2()
			pr2, pw2 := io.Pipe()
			done2 := make(chan struct{})
			go func() {
				defer close(done2)
				runTail(ctx2, []string{"--url", url, "--name", "tailer", "--transport", tr, "--after", "2"}, pw2, io.Discard)
				pw2.Close()
			}()
			again := bufio.NewScanner(pr2)
			if !again.Scan() || again.Text() != "[3] ann: (deleted)" {
				t.Fatalf("line %q (%v); want %q", again.Text(), again.Err(), "[3] ann: (deleted)")
			}
			stop2()
			go io.Copy(io.Discard, pr2)
			<-done2
		})
	}
}

// TestSearchCommand: natter search prints the matches newest first with their latest text, says
// where older ones begin, and with --all goes through the whole log.
func TestSearchCommand(t *testing.T) {
	url := openNatter(t)
	ctx := t.Context()
	ann := accounts(t, url, "ann")
	for _, body := range []string{"deploy at noon", "lunch", "deploy done", "DEPLOY again"} {
		if _, err := ann.Send(ctx, "lobby", body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ann.Edit(ctx, "lobby", 1, "deploy at one"); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runSearch(ctx, append([]string{"--url", url, "--name", "sam"}, args...), &out, &errOut); err != nil {
			t.Fatalf("natter search %q: %v (stderr %s)", args, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	if out, _ := run("deploy"); out != "[4] ann: DEPLOY again\n[3] ann: deploy done\n[1] ann: deploy at one (edited)\n" {
		t.Fatalf("printed %q", out)
	}
	out, note := run("--limit", "1", "deploy")
	if out != "[4] ann: DEPLOY again\n" || !strings.Contains(note, "older ones with --before 4") {
		t.Fatalf("one page: %q, note %q", out, note)
	}
	if out, _ := run("--limit", "1", "--all", "deploy"); out != "[4] ann: DEPLOY again\n[3] ann: deploy done\n[1] ann: deploy at one (edited)\n" {
		t.Fatalf("--all printed %q", out)
	}
	var errOut bytes.Buffer
	if err := runSearch(ctx, []string{"--url", url, "--name", "sam"}, io.Discard, &errOut); err == nil {
		t.Fatal("a search without words ran")
	}
}

// TestDirectFlag: --to sends to, tails and searches the direct conversation with an account (made
// by the first of them); a name that is no account is an error, and nothing is sent.
func TestDirectFlag(t *testing.T) {
	url := openNatter(t)
	ctx := t.Context()
	ben := accounts(t, url, "ann", "ben")
	if got := send(t, "--url", url, "--name", "ann", "--password", "ann's password", "--to", "ben", "just", "for", "ben"); got != "1\n" {
		t.Fatalf("printed %q; want 1", got)
	}
	room, err := ben.Direct(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	page, err := ben.Messages(ctx, room.Name, client.Query{})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Body != "just for ben" || page.Messages[0].Author != "ann" {
		t.Fatalf("ben reads %+v, %v", page, err)
	}
	var out, errOut bytes.Buffer
	if err := runSearch(ctx, []string{"--url", url, "--name", "ben", "--password", "ben's password", "--to", "ann", "ben"}, &out, &errOut); err != nil || out.String() != "[1] ann: just for ben\n" {
		t.Fatalf("natter search --to: %q, %v (stderr %s)", out.String(), err, errOut.String())
	}
	errOut.Reset()
	if err := runSend(ctx, []string{"--url", url, "--name", "ann", "--password", "ann's password", "--to", "nobody", "hi"}, io.Discard, &errOut); err == nil || !strings.Contains(err.Error(), `no account named "nobody"`) {
		t.Fatalf("send --to nobody: %v", err)
	}
	if err := runSend(ctx, []string{"--url", url, "--name", "gus", "--to", "ann", "hi"}, io.Discard, &errOut); err == nil || !strings.Contains(err.Error(), "guest") {
		t.Fatalf("send --to as a guest: %v", err)
	}
	if page, _ := ben.Messages(ctx, room.Name, client.Query{}); page.LastSeq != 1 {
		t.Fatalf("last_seq %d after the refusals, want 1", page.LastSeq)
	}
}
