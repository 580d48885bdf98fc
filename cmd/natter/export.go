package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"natter/client"
)

// runExport implements `natter export`: it writes a room's log to standard output as JSON Lines,
// one entry per line (a message, an edit, a deletion, a reaction or a pin, each as the API gives
// it) in seq order, from --after on up to the room's last seq when it began, and exits. A summary
// goes to standard error; `--after` the last seq written resumes an export.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var acct accountFlags
	acct.register(fs)
	after := fs.Int64("after", 0, "write the entries after this seq (0: the whole log)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: natter export [flags] > ROOM.jsonl\n\nWrites the room's log as JSON Lines, one entry per line in seq order, and exits. Every flag can be set as NATTER_<FLAG>.\n\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("export takes no arguments, got %q", rest)
	}
	if *after < 0 {
		return fmt.Errorf("--after must be 0 or more, not %d", *after)
	}
	c, err := acct.signIn(ctx)
	if err != nil {
		return err
	}
	defer signOut(ctx, c)
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	first, at, written := *after, *after, 0
	var epoch string
	var end int64 = -1
	for {
		page, err := c.Messages(ctx, acct.room, client.Query{After: at, Limit: 1000})
		if err != nil {
			return fmt.Errorf("read %s after %d: %w", acct.room, at, err)
		}
		if epoch == "" {
			epoch, end = page.Epoch, page.LastSeq // what there is now: later sends are not waited for
		} else if page.Epoch != epoch {
			return fmt.Errorf("room %s was reset (its epoch changed) during the export: start again", acct.room)
		}
		for _, m := range page.Messages {
			if m.Seq > end {
				break
			}
			if err := enc.Encode(m); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			at = m.Seq
			written++
		}
		if len(page.Messages) == 0 || at >= end {
			break
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Fprintf(stderr, "natter export: %d entries of room %s (epoch %s), seq %d to %d\n", written, acct.room, epoch, first+1, at)
	return nil
}
