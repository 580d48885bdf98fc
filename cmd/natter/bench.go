package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"natter/bench"
)

const benchUsage = `usage: natter bench SCENARIO (--url URL | --spawn) [flags]

Drives a natter server over loopback and measures it. Scenarios:
  fanout   --subs N subscribers in one room, one publisher sending --messages at --rate msg/s
  rooms    --rooms R rooms x --subs S subscribers, one publisher per room
  ingest   --senders C concurrent senders, acknowledged messages/s and ack latency
  idle     --conns N idle connections of --transport, server RSS per connection

--transport ws|sse|poll chooses how subscribers receive (ingest: sse and poll send by HTTP POST).
--rate 0 sends as fast as the server acknowledges (--window sends in flight per publisher).
With --spawn (or --pid PID) the server's RSS and CPU time are sampled from /proc.
The run always stops by itself at --duration.

flags:
`

// runBench is `natter bench`: it parses flags into a bench.Config, optionally spawns a server,
// runs the scenario, and prints the table, the JSON and the plot.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var cfg bench.Config
	var (
		spawn      = fs.Bool("spawn", false, "start a natter serve child process on a random loopback port for this run")
		serverArgs listFlag
		jsonPath   = fs.String("json", "", "write every figure as JSON to this file")
		plotPath   = fs.String("plot", "", "draw the latency timeline to this .png or .svg file")
		quiet      = fs.Bool("quiet", false, "no progress on stderr")
		procs      = fs.Int("procs", 0, "CPUs the load generator itself runs Go code on (GOMAXPROCS; default 1 for ingest, all otherwise)")
		nodes      = fs.Int("nodes", 1, "with --spawn: start this many nodes of one natter (they need --server-arg=--redis=URL); subscribers spread over them")
		subURLs    commaListFlag
	)
	fs.Var(&subURLs, "sub-url", "another node of the same natter (on one Redis): subscribers connect to --url and these in turn (repeatable, or comma-separated)")
	fs.Var(&serverArgs, "server-arg", "extra flag for the spawned server, e.g. --server-arg=--sync=NORMAL (repeatable)")
	fs.StringVar(&cfg.URL, "url", "", "base URL of the server to load, e.g. http://127.0.0.1:8080")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a --url that is not a loopback address")
	fs.StringVar(&cfg.Transport, "transport", "ws", "ws, sse or poll")
	fs.IntVar(&cfg.Subs, "subs", 0, "fanout: subscribers (default 100); rooms: subscribers per room (default 10)")
	fs.IntVar(&cfg.Rooms, "rooms", 0, "rooms: rooms (default 10); ingest: rooms the senders spread over (default 1)")
	fs.StringVar(&cfg.Room, "room", "", "use this room (created if missing) instead of a fresh one per run")
	fs.IntVar(&cfg.Messages, "messages", 0, "fanout, rooms: messages per room (default 1000); ingest: in total (default 100000)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "fanout, rooms: msg/s per room; ingest: msg/s in total; 0 = as fast as acknowledged")
	fs.IntVar(&cfg.Window, "window", 0, "sends in flight per WebSocket publisher (default 64; ingest 1)")
	fs.IntVar(&cfg.Pubs, "publishers", 0, "fanout, rooms: publisher connections per room, sharing its --messages and --rate (default 1)")
	fs.IntVar(&cfg.Batch, "batch", 0, "connections dialed at once while connecting (default 100)")
	fs.IntVar(&cfg.Senders, "senders", 0, "ingest: concurrent senders (default 100)")
	fs.IntVar(&cfg.Conns, "conns", 0, "idle: connections (default 1000)")
	fs.IntVar(&cfg.Users, "users", 0, "distinct guest names the subscribers share (default 100; --users >= subscribers gives each its own; presence traffic grows with it)")
	fs.IntVar(&cfg.BodySize, "body-size", 0, "message body bytes (default 64)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "hard cap on the run (default 60s)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "wait after connecting before measuring RSS (default 1s; idle 5s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "give up waiting for deliveries after this long without progress (default 5s)")
	fs.DurationVar(&cfg.Bucket, "bucket", 0, "latency timeline bucket (default 100ms)")
	fs.DurationVar(&cfg.PollWait, "poll-wait", 0, "long-poll wait (default 60s)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id to sample RSS and CPU from /proc")

	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cfg.Scenario, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Scenario == "" && fs.NArg() > 0 {
		cfg.Scenario = fs.Arg(0)
		fs.Parse(fs.Args()[1:])
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q (flags go after the scenario name)", fs.Args())
	}
	if cfg.Scenario == "" {
		fs.Usage()
		return errors.New("bench: name a scenario: fanout, rooms, ingest or idle")
	}
	if *spawn && cfg.URL != "" {
		return errors.New("bench: give --url or --spawn, not both")
	}
	if !*spawn && len(serverArgs) > 0 {
		return errors.New("bench: --server-arg needs --spawn")
	}
	if *spawn && cfg.PID != 0 {
		return errors.New("bench: --pid is implied by --spawn")
	}
	if *plotPath != "" && !strings.HasSuffix(*plotPath, ".png") && !strings.HasSuffix(*plotPath, ".svg") {
		return fmt.Errorf("bench: --plot %s must end in .png or .svg", *plotPath)
	}
	if *nodes < 1 {
		return fmt.Errorf("bench: --nodes must be at least 1, not %d", *nodes)
	}
	if *nodes > 1 && (!*spawn || !slices.ContainsFunc(serverArgs, func(a string) bool { return strings.HasPrefix(a, "--redis=") })) {
		return errors.New("bench: --nodes needs --spawn and --server-arg=--redis=URL: nodes are one natter only when they share a Redis")
	}
	cfg.SubURLs = subURLs
	if *spawn {
		cfg.URL = "http://127.0.0.1:1" // placeholder so that validation can run before spawning
	}
	if err := validate(cfg); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *procs < 0 {
		return fmt.Errorf("bench: --procs must be positive, not %d", *procs)
	}
	// The load generator shares the machine with the server, so it should cost as little as it
	// can. Ingest's senders need about a third of a core, and with a second P each ack's wake-up
	// also woke a second thread: one P took a fifth off the load generator's CPU and gave the
	// server that much more (docs/benchmarks.md). The fan-outs read thousands of sockets and
	// keep every CPU.
	if *procs == 0 && cfg.Scenario == "ingest" {
		*procs = 1
	}
	if *procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(*procs))
	}

	// Every connection is a file descriptor here and another in the server (which inherits our
	// limit when spawned).
	limit, err := bench.RaiseFileLimit()
	need := cfg.NeededFiles()
	if err != nil {
		fmt.Fprintf(stderr, "natter bench: could not raise the open file limit: %v\n", err)
	}
	if limit < uint64(need) {
		fmt.Fprintf(stderr, "natter bench: warning: the open file limit is %d (hard limit), but this run needs about %d in this process and in the server: raise it (ulimit -Hn) or connections will fail\n", limit, need)
	}

	if *spawn {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: --spawn: %w", err)
		}
		for i := range *nodes {
			srv, err := bench.Spawn(ctx, exe, serverArgs, stderr)
			if err != nil {
				return fmt.Errorf("bench: --spawn: %w", err)
			}
			defer srv.Close()
			if i == 0 {
				cfg.URL, cfg.PID = srv.URL, srv.PID
			} else {
				cfg.SubURLs, cfg.PIDs = append(cfg.SubURLs, srv.URL), append(cfg.PIDs, srv.PID)
			}
			fmt.Fprintf(stderr, "natter bench: spawned natter serve (pid %d) at %s\n", srv.PID, srv.URL)
		}
	}

	if !*quiet {
		cfg.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				cfg.ProgressTTY = true
			}
		}
	}
	res, err := bench.Run(ctx, cfg)
	if res != nil && (err == nil || res.Connections > 0 || res.Published > 0) {
		res.Machine = bench.MachineInfo()
		res.Machine["open_file_limit"] = fmt.Sprint(limit)
		res.Params["procs"] = fmt.Sprint(runtime.GOMAXPROCS(0))
		if *spawn {
			res.Params["server"] = "spawned: natter serve --send-rate -1 --signin-rate -1 --room-rate -1 --max-addr-conns -1 " + strings.Join(serverArgs, " ")
			if *nodes > 1 {
				res.Params["server"] = fmt.Sprintf("%d nodes, each ", *nodes) + res.Params["server"]
			}
		}
		res.WriteTable(stdout)
		if *jsonPath != "" {
			if werr := res.WriteJSON(*jsonPath); werr != nil {
				return fmt.Errorf("bench: --json: %w", werr)
			}
		}
		if *plotPath != "" {
			if werr := res.WritePlot(*plotPath); werr != nil {
				fmt.Fprintf(stderr, "natter bench: --plot: %v\n", werr)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// A run that lost, repeated or reordered a message, or lost an acked one, found a bug,
	// whatever its speed: say so in the exit status, so scripts and CI notice.
	if res != nil {
		if err := res.Intact(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// validate checks cfg the way bench.Run will, before a server is spawned for nothing.
func validate(cfg bench.Config) error {
	return bench.Validate(cfg)
}
