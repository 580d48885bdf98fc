package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"natter"
	"natter/client"
)

// runTail implements `natter tail`: it prints a room's messages as `[seq] author: body` as they
// arrive, over the chosen transport, until ctx ends (Ctrl-C). Reconnects are reported on stderr;
// no message is printed twice or skipped across them.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var acct accountFlags
	acct.register(fs)
	transport := fs.String("transport", string(client.TransportWS), "how to receive messages: ws, sse or poll")
	after := fs.Int64("after", -1, "print the messages after this seq first (0: the whole log); negative: only new ones")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: natter tail [flags]\n\nPrints a room's messages as they arrive, until interrupted. Every flag can be set as NATTER_<FLAG>.\n\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("tail takes no arguments, got %q", rest)
	}
	tr := client.Transport(*transport)
	switch tr {
	case client.TransportWS, client.TransportSSE, client.TransportPoll:
	default:
		return fmt.Errorf("--transport %q: use ws, sse or poll", *transport)
	}
	c, err := acct.signIn(ctx)
	if err != nil {
		return err
	}
	defer signOut(ctx, c)

	err = c.Follow(ctx, client.Subscription{
		Room:      acct.room,
		After:     *after,
		Transport: tr,
		OnMessage: func(m natter.Message) {
			body := m.Body
			if m.Deleted {
				body = "(deleted)"
			}
			switch m.Kind {
			case natter.KindEdit:
				fmt.Fprintf(stdout, "[%d] %s edited [%d]: %s\n", m.Seq, m.Author, m.Target, body)
			case natter.KindDelete:
				fmt.Fprintf(stdout, "[%d] %s deleted [%d]\n", m.Seq, m.Author, m.Target)
			case natter.KindReact:
				fmt.Fprintf(stdout, "[%d] %s reacted %s to [%d]\n", m.Seq, m.Author, m.Body, m.Target)
			case natter.KindPin:
				fmt.Fprintf(stdout, "[%d] %s pinned [%d]\n", m.Seq, m.Author, m.Target)
			case natter.KindUnpin:
				fmt.Fprintf(stdout, "[%d] %s unpinned [%d]\n", m.Seq, m.Author, m.Target)
			case natter.KindUnreact:
				fmt.Fprintf(stdout, "[%d] %s took back %s on [%d]\n", m.Seq, m.Author, m.Body, m.Target)
			default:
				if m.ReplyTo != 0 {
					fmt.Fprintf(stdout, "[%d] %s (to [%d]): %s\n", m.Seq, m.Author, m.ReplyTo, body)
					return
				}
				fmt.Fprintf(stdout, "[%d] %s: %s\n", m.Seq, m.Author, body)
			}
		},
		OnEpoch: func(old, new string) {
			if old != "" {
				fmt.Fprintf(stderr, "natter tail: room %s was reset (epoch %s -> %s); starting over from its first message\n", acct.room, old, new)
			}
		},
		OnError: func(err error) {
			fmt.Fprintf(stderr, "natter tail: reconnecting: %v\n", err)
		},
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the normal way to stop tailing
	}
	return err
}
