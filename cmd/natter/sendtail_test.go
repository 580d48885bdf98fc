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
	"natter/server"
)

// openNatter starts natter in-process on a random loopback port for the send and tail tests.
func openNatter(t *testing.T) string {
	t.Helper()
	m, err := app.Open(context.Background(), app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:    "NORMAL",
		Server:  server.Config{Guests: true, SendRate: -1},
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
			url := openNatter(t)
			send(t, "--url", url, "--name", "ann", "before")
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
				send(t, "--url", url, "--name", "ann", fmt.Sprint("live ", i))
				if got, want := next(), fmt.Sprintf("[%d] ann: live %d", i, i); got != want {
					t.Fatalf("line %q; want %q", got, want)
				}
			}
			stop()
			go io.Copy(io.Discard, pr) // let tail finish a write it may have started
			if err := <-done; err != nil {
				t.Fatalf("tail returned %v after the interrupt; want nil", err)
			}
		})
	}
}
