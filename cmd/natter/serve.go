package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"natter"
	"natter/app"
	"natter/hub"
	"natter/server"
)

// proxyFlag is --trusted-proxy: addresses and CIDR prefixes, repeated or separated by commas
// (not by the path-list separator of other repeatable flags, which is a colon in IPv6).
type proxyFlag []netip.Prefix

func (f *proxyFlag) String() string { return fmt.Sprint(*f) }

func (f *proxyFlag) Set(v string) error {
	for _, one := range strings.Split(v, ",") {
		p, err := server.ParseTrustedProxy(one)
		if err != nil {
			return err
		}
		*f = append(*f, p)
	}
	return nil
}

// redactURL hides a password in a Redis URL, for the log.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return p.Redacted()
}

// coalesceFlag maps --write-coalesce 0 (none) to the Config's "none", which is negative since
// zero there means the default.
func coalesceFlag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr         = fs.String("addr", "localhost:8080", "address to listen on (host:port; :0 picks a free port)")
		dataDir      = fs.String("data-dir", "./natter-data", "directory for the SQLite database")
		guests       = fs.Bool("guests", true, "let unregistered names sign in without a password as guests")
		sync         = fs.String("sync", "FULL", "durability: FULL (the WAL is fsynced before a message is acked: acked messages survive power loss) or NORMAL (they survive a natter crash)")
		maxBody      = fs.Int("max-body", natter.DefaultMaxBodyChars, "most characters in a message body")
		maxFrame     = fs.Int("max-frame", natter.DefaultMaxFrameBytes, "most bytes in one WebSocket frame from a client")
		maxWait      = fs.Duration("max-wait", natter.DefaultMaxWait, "longest long-poll wait")
		maxPage      = fs.Int("max-page", natter.DefaultMaxPageSize, "most messages one read returns")
		sendRate     = fs.Float64("send-rate", server.DefaultSendRate, "messages per second one user may send, sustained (negative: no limit)")
		sendBurst    = fs.Int("send-burst", server.DefaultSendBurst, "messages one user may send in a burst")
		searchRate   = fs.Float64("search-rate", server.DefaultSearchRate, "room searches per second one user may make, sustained (negative: no limit)")
		searchBurst  = fs.Int("search-burst", server.DefaultSearchBurst, "room searches one user may make in a burst")
		roomRate     = fs.Float64("room-rate", server.DefaultRoomRate, "rooms (direct conversations too) one user may make per minute, sustained (negative: no limit)")
		roomBurst    = fs.Int("room-burst", server.DefaultRoomBurst, "rooms one user may make in a burst")
		changeRate   = fs.Float64("change-rate", server.DefaultChangeRate, "changes of rooms and accounts (members, bans, renames, closed conversations, suspensions, password resets) one user may make per minute, sustained (negative: no limit)")
		changeBurst  = fs.Int("change-burst", server.DefaultChangeBurst, "changes of rooms and accounts one user may make in a burst")
		signInRate   = fs.Float64("signin-rate", server.DefaultSignInRate, "sign-ins and registrations per minute from one client address, in bursts of as many (negative: no limit)")
		queueBytes   = fs.Int("queue-bytes", hub.DefaultQueueBytes, "bytes queued for one connection before it is closed as slow")
		coalesce     = fs.Duration("write-coalesce", server.DefaultWriteCoalesce, "shortest time between two writes to one connection: faster messages go out together (0: none)")
		maxConns     = fs.Int("max-conns", 0, fmt.Sprintf("most WebSockets, event streams and waiting long-polls open at once (0: %d, or the open-file limit less %d, or less a quarter of it if that is fewer, if lower; negative: no limit)", server.DefaultMaxConns, server.FileReserve))
		maxUserConns = fs.Int("max-user-conns", server.DefaultMaxUserConns, "most WebSockets, event streams and waiting long-polls one user may have open (negative: no limit)")
		maxConnRooms = fs.Int("max-conn-rooms", server.DefaultMaxConnRooms, "most rooms one WebSocket may be subscribed to at once")
		maxAddrConns = fs.Int("max-addr-conns", server.DefaultMaxAddrConns, "most WebSockets, event streams and waiting long-polls one client address (an IPv6 /64) may have open (negative: no limit)")
		minPassword  = fs.Int("min-password", server.DefaultMinPassword, "shortest password accepted at registration")
		sessionTTL   = fs.Duration("session-ttl", server.DefaultSessionTTL, "how long a sign-in lasts")
		retention    = fs.String("retention", "0", `how long messages keep their words ("90d", "720h"; at least 1h): older ones, and older edits, are erased as a deletion erases them (0: for ever)`)
		metrics      = fs.Bool("metrics", true, "serve GET /metrics (Prometheus text format: connections, messages, refusals, send latency, memory)")
		tlsCert      = fs.String("tls-cert", "", "PEM certificate (chain) file: serve HTTPS and wss:// (with --tls-key)")
		tlsKey       = fs.String("tls-key", "", "PEM private key file of --tls-cert")
		logLevel     = fs.String("log-level", "info", "debug, info, warn or error")
		redisURL     = fs.String("redis", "", "keep rooms, logs, accounts and sessions in this Redis (redis://host:port/db) instead of SQLite in --data-dir, shared with every natter node that uses it: scale-out")
		redisPrefix  = fs.String("redis-prefix", "natter", "key prefix in --redis: nodes with the same prefix share one chat")
		staticDirs   listFlag
		templateDirs listFlag
		origins      commaListFlag
		admins       commaListFlag
		proxies      proxyFlag
	)
	fs.Var(&staticDirs, "static-dir", "directory searched for static files before the embedded ones (repeatable; first match wins)")
	fs.Var(&templateDirs, "template-dir", "directory searched for page templates before the embedded ones (repeatable; first match wins)")
	fs.Var(&origins, "allowed-origin", "another origin (scheme://host:port) whose pages may use this server (repeatable, or comma-separated)")
	fs.Var(&admins, "admins", "accounts that moderate every room (but direct conversations) and may suspend accounts (repeatable, or comma-separated)")
	fs.Var(&proxies, "trusted-proxy", "a reverse proxy's address or CIDR prefix: requests from it count against the client that X-Forwarded-For (or Forwarded) names (repeatable, or comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	syncMode := strings.ToUpper(*sync)
	if syncMode != "FULL" && syncMode != "NORMAL" {
		return fmt.Errorf("--sync must be FULL or NORMAL, not %q", *sync)
	}
	for name, v := range map[string]int{"--max-body": *maxBody, "--max-frame": *maxFrame, "--max-page": *maxPage, "--send-burst": *sendBurst, "--queue-bytes": *queueBytes} {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, not %d", name, v)
		}
	}
	if *maxUserConns == 0 {
		return fmt.Errorf("--max-user-conns must be positive, or negative for no limit")
	}
	if *maxAddrConns == 0 {
		return fmt.Errorf("--max-addr-conns must be positive, or negative for no limit")
	}
	if *sendRate == 0 {
		return fmt.Errorf("--send-rate must be positive, or negative for no limit")
	}
	if *roomRate == 0 {
		return fmt.Errorf("--room-rate must be positive, or negative for no limit")
	}
	if *changeRate == 0 {
		return fmt.Errorf("--change-rate must be positive, or negative for no limit")
	}
	if *signInRate == 0 {
		return fmt.Errorf("--signin-rate must be positive, or negative for no limit")
	}
	keep, err := natter.ParseRetention(*retention)
	if err != nil {
		return fmt.Errorf("--retention: %s", natter.ErrorMessage(err))
	}

	m, err := app.Open(ctx, app.Config{
		Addr:        *addr,
		DataDir:     *dataDir,
		Logger:      logger,
		Sync:        syncMode,
		TLSCert:     *tlsCert,
		TLSKey:      *tlsKey,
		Redis:       *redisURL,
		RedisPrefix: *redisPrefix,
		Server: server.Config{
			Limits:           natter.Limits{MaxBodyChars: *maxBody, MaxFrameBytes: *maxFrame, MaxWait: *maxWait, MaxPageSize: *maxPage},
			Guests:           *guests,
			SessionTTL:       *sessionTTL,
			Retention:        keep,
			MinPasswordChars: *minPassword,
			SendRate:         *sendRate,
			SendBurst:        *sendBurst,
			SearchRate:       *searchRate,
			SearchBurst:      *searchBurst,
			MaxConnRooms:     *maxConnRooms,
			RoomRate:         *roomRate,
			RoomBurst:        *roomBurst,
			ChangeRate:       *changeRate,
			ChangeBurst:      *changeBurst,
			SignInRate:       *signInRate,
			TrustedProxies:   proxies,
			QueueBytes:       *queueBytes,
			Metrics:          *metrics,
			MaxConns:         *maxConns,
			MaxUserConns:     *maxUserConns,
			MaxAddrConns:     *maxAddrConns,
			WriteCoalesce:    coalesceFlag(*coalesce),
			AllowedOrigins:   origins,
			Admins:           admins,
			StaticDirs:       staticDirs,
			TemplateDirs:     templateDirs,
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "natter is listening on %s\n", m.URL())
	total, perUser, perAddr := m.Server().ConnLimits()
	where := []any{"data_dir", *dataDir}
	if *redisURL != "" {
		where = []any{"redis", redactURL(*redisURL), "redis_prefix", *redisPrefix}
	}
	logger.Info("serving", append(append([]any{"url", m.URL()}, where...), "max_conns", total, "max_user_conns", perUser, "max_addr_conns", perAddr)...)

	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.Close(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}
