package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// runSearch implements `natter search`: it prints the room's messages that match the words given
// (as the room page's search box does), newest first, as `[seq] author: text` with each edited
// message's latest text. One request reads at most 10,000 messages back; --all goes on to the
// start of the log, and otherwise a note on stderr says where the next page begins.
func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter search", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var acct accountFlags
	acct.register(fs)
	limit := fs.Int("limit", 20, "most matches a request returns (1 to 100)")
	before := fs.Int64("before", 0, "search the messages before this seq (0: from the newest)")
	all := fs.Bool("all", false, "go on through the whole log, request after request")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: natter search [flags] WORDS...\n\nPrints the room's messages with every word (any case; from:NAME for one author's), newest first. Every flag can be set as NATTER_<FLAG>.\n\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	q := strings.Join(rest, " ")
	if strings.TrimSpace(q) == "" {
		return fmt.Errorf("give the words to search for")
	}
	c, err := acct.signIn(ctx)
	if err != nil {
		return err
	}
	defer signOut(ctx, c)
	at, scanned := *before, 0
	for {
		page, err := c.Search(ctx, acct.room, q, at, *limit)
		if err != nil {
			return err
		}
		edits := make(map[int64]string, len(page.Changes))
		for _, e := range page.Changes {
			edits[e.Target] = e.Body
		}
		for _, m := range page.Messages {
			text, edited := edits[m.Seq]
			if !edited {
				text = m.Body
			}
			line := fmt.Sprintf("[%d] %s: %s", m.Seq, m.Author, text)
			if edited {
				line += " (edited)"
			}
			fmt.Fprintln(stdout, line)
		}
		scanned += page.Scanned
		if page.Before == 0 {
			return nil
		}
		if !*all {
			fmt.Fprintf(stderr, "natter search: %d messages searched; older ones with --before %d (or --all)\n", scanned, page.Before)
			return nil
		}
		at = page.Before
	}
}
