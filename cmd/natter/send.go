package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"natter"
	"natter/client"
)

// signOutTimeout bounds the sign-out that send and tail do on their way out: the session is
// worth ending, but not worth hanging an exiting command for.
const signOutTimeout = 3 * time.Second

// accountFlags are the flags send and tail share: where the server is and who signs in.
type accountFlags struct {
	url, room, to, name, password string
}

func (a *accountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "http://localhost:8080", "base URL of the natter server")
	fs.StringVar(&a.room, "room", "lobby", "room name")
	fs.StringVar(&a.to, "to", "", "an account's name: the direct conversation with it, in place of --room (accounts only)")
	fs.StringVar(&a.name, "name", "", "user name to sign in as (required)")
	fs.StringVar(&a.password, "password", "", "password; empty signs in as a guest where the server allows it")
}

// signIn returns a client signed in as the flags say. With --to, a.room becomes the room of the
// direct conversation with that account (opened, and made the first time).
func (a *accountFlags) signIn(ctx context.Context) (*client.Client, error) {
	if a.name == "" {
		return nil, errors.New("--name is required (or set NATTER_NAME)")
	}
	c := client.New(a.url)
	if err := c.SignIn(ctx, a.name, a.password); err != nil {
		return nil, fmt.Errorf("sign in to %s as %s: %w", a.url, a.name, err)
	}
	if a.to != "" {
		room, err := c.Direct(ctx, a.to)
		if err != nil {
			signOut(ctx, c)
			return nil, fmt.Errorf("open the conversation with %s: %w", a.to, err)
		}
		a.room = room.Name
	}
	return c, nil
}

// signOut ends c's session even when ctx has ended already (the usual case after Ctrl-C), so
// that one-shot commands don't leave live tokens behind.
func signOut(ctx context.Context, c *client.Client) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signOutTimeout)
	defer cancel()
	c.SignOut(ctx)
}

// parseInterspersed parses flags that may come before or after positional arguments, so that
// `natter send "hi" --room ops` works like `natter send --room ops "hi"`, and returns the
// positional arguments. The environment is consulted once, first, so that a command-line flag
// always wins.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var positional []string
	for fs.NArg() > 0 {
		rest := fs.Args()
		if rest[0] == "--" || !strings.HasPrefix(rest[0], "-") || rest[0] == "-" {
			if rest[0] == "--" {
				return append(positional, rest[1:]...), nil
			}
			positional = append(positional, rest[0])
			rest = rest[1:]
		}
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
	}
	return positional, nil
}

// runSend implements `natter send`: it signs in, sends one message (retrying transient failures
// without ever storing it twice) and prints the stored message's seq; with "-" for the text it
// sends each line of standard input instead (sendLines).
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSendFrom(ctx, args, os.Stdin, stdout, stderr)
}

func runSendFrom(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var acct accountFlags
	acct.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: natter send [flags] TEXT\n       natter send [flags] -    (each line of standard input is a message)\n\nSends TEXT to a room and prints its seq. Every flag can be set as NATTER_<FLAG>.\n\n")
		fs.PrintDefaults()
	}
	words, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	fromStdin := len(words) == 1 && words[0] == "-"
	text := strings.Join(words, " ")
	if text == "" {
		fs.Usage()
		return errors.New("send: no message text (give it as arguments, or - to send each line of standard input)")
	}
	c, err := acct.signIn(ctx)
	if err != nil {
		return err
	}
	defer signOut(ctx, c)
	if fromStdin {
		return sendLines(ctx, c, acct.room, stdin, stdout, stderr)
	}
	msg, err := c.Send(ctx, acct.room, text)
	if err != nil {
		return fmt.Errorf("send to %s: %w", acct.room, err)
	}
	fmt.Fprintln(stdout, msg.Seq)
	return nil
}

// maxLineBytes bounds a line read by sendLines: far above any message body the server takes, so
// that a longer line is refused by the server's own limit, but not the whole of a runaway input.
const maxLineBytes = 1 << 20

// sendLines sends each line of in (without its line ending; empty lines are skipped) as one
// message, in order, from the one session, and prints each seq as it is stored. A line the server
// refuses for its content (too long, not valid) is reported on stderr and the rest go on; any
// other failure (the room, the server, the connection) ends the run, after the retries every send
// gets. The run fails if any line was not sent.
func sendLines(ctx context.Context, c *client.Client, room string, in io.Reader, stdout, stderr io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	skipped := 0
	for n := 1; ; n++ {
		line, tooLong, err := readLine(r, maxLineBytes)
		if err != nil && err != io.EOF {
			return fmt.Errorf("send: reading standard input: %w", err)
		}
		if tooLong {
			fmt.Fprintf(stderr, "natter send: line %d: longer than %d bytes, not sent\n", n, maxLineBytes)
			skipped++
		} else if line != "" {
			msg, serr := c.Send(ctx, room, line)
			switch code := natter.ErrorCode(serr); {
			case serr == nil:
				fmt.Fprintln(stdout, msg.Seq)
			case code == natter.EINVALID || code == natter.ETOOLARGE:
				fmt.Fprintf(stderr, "natter send: line %d: %v\n", n, serr)
				skipped++
			default:
				return fmt.Errorf("send to %s: line %d: %w", room, n, serr)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if skipped > 0 {
		return fmt.Errorf("send: %d line(s) not sent", skipped)
	}
	return nil
}

// readLine reads one line of r without its "\n" or "\r\n". A line over max bytes is read to its
// end and reported as tooLong. err is io.EOF with the last line when the input ends.
func readLine(r *bufio.Reader, max int) (line string, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, isPrefix, rerr := r.ReadLine()
		if rerr != nil {
			return string(buf), tooLong, rerr
		}
		if !tooLong {
			if len(buf)+len(chunk) > max {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if !isPrefix {
			return string(buf), tooLong, nil
		}
	}
}
