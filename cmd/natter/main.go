// Command natter is the natter chat server and its tools, in one binary:
//
//	natter serve   run the server (web UI, API, WebSocket, SSE and long-polling on one port)
//	natter send    send one message
//	natter tail    print a room's messages as they arrive
//	natter search  find a room's messages by their words
//	natter export  write a room's log as JSON Lines
//	natter bench   drive a running natter and measure it
//	natter backup  copy a running natter's database
//	natter restore put a backup in place of a stopped natter's database
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `natter: a real-time chat server

usage:
  natter serve [flags]        run the server (natter serve -h for flags)
  natter send [flags] TEXT    send one message (TEXT "-": each line of standard input)
  natter tail [flags]         print a room's messages as they arrive
  natter search [flags] WORDS find a room's messages by their words, newest first
  natter export [flags]       write a room's log as JSON Lines, one entry per line, and exit
  natter moderate ACTION ...  ban, unban, bans, suspend, reinstate, suspended, reset-password,
                              delete-room (-h)
  natter bench SCENARIO ...   measure a running natter (natter bench -h)
  natter backup FILE          copy a running natter's database to FILE (--data-dir)
  natter restore FILE         put a backup in place of a stopped natter's database (--data-dir)

Every flag can also be set in the environment as NATTER_<FLAG>, e.g. NATTER_ADDR=:9000.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // help was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "natter:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "send":
		return runSend(ctx, rest, stdout, stderr)
	case "tail":
		return runTail(ctx, rest, stdout, stderr)
	case "search":
		return runSearch(ctx, rest, stdout, stderr)
	case "export":
		return runExport(ctx, rest, stdout, stderr)
	case "moderate":
		return runModerate(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// parseFlags parses args, first taking defaults from NATTER_<NAME> environment variables (dashes
// become underscores), so that containers can be configured without a command line. A flag on the
// command line wins over the environment.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "NATTER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			for _, item := range splitList(f, v) {
				if err := f.Value.Set(item); err != nil && envErr == nil {
					envErr = fmt.Errorf("%s=%q: %v", env, v, err)
				}
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return fs.Parse(args)
}

// splitList splits a repeatable flag's environment value on the OS path-list separator.
func splitList(f *flag.Flag, v string) []string {
	if _, ok := f.Value.(*listFlag); ok {
		return strings.Split(v, string(os.PathListSeparator))
	}
	return []string{v}
}

// listFlag is a flag that may repeat, collecting its values in order.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// commaListFlag is a flag that may repeat and whose values may also be separated by commas, in
// the environment too: for values that hold colons themselves (URLs), where listFlag's
// path-list separator would cut them apart.
type commaListFlag []string

func (l *commaListFlag) String() string { return strings.Join(*l, ",") }

func (l *commaListFlag) Set(v string) error {
	for _, one := range strings.Split(v, ",") {
		if one = strings.TrimSpace(one); one != "" {
			*l = append(*l, one)
		}
	}
	return nil
}
