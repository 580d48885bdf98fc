// Package bench is natter's load generator, the engine of `natter bench`. It drives a running
// server over loopback with raw WebSocket frames, hand-written SSE requests and long-polls, and
// measures what users feel (delivery latency, loss, order) and what the server pays (RSS per
// connection, CPU per delivery).
//
// Scenarios:
//
//	fanout  N subscribers in one room, one publisher
//	rooms   R rooms x S subscribers, one publisher per room
//	ingest  C concurrent senders, acknowledged messages/s and ack latency
//	idle    N idle connections of one transport, RSS per connection
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"natter/ws"
)

// Scenarios lists the scenario names Run accepts.
var Scenarios = []string{"fanout", "rooms", "ingest", "idle"}

// Config describes one run. Zero fields take the defaults documented per field; Validate reports
// the first bad value with a sentence meant for the command line.
type Config struct {
	Scenario    string // fanout, rooms, ingest or idle
	URL         string // base URL of the server, e.g. http://127.0.0.1:8080
	AllowRemote bool   // permit a non-loopback URL
	// SubURLs are more nodes of the same natter (sharing one Redis): subscribers connect to URL
	// and these in turn, while publishers, senders and sign-ins use URL.
	SubURLs   []string
	Transport string // ws (default), sse or poll: how subscribers receive; ingest sends by HTTP POST for sse and poll

	Subs     int     // fanout: subscribers (default 100); rooms: subscribers per room (default 10)
	Rooms    int     // rooms: number of rooms (default 10); ingest: rooms the senders spread over (default 1)
	Room     string  // fanout, ingest, idle: use this room (created if missing) instead of a fresh one
	Messages int     // fanout, rooms: messages per room (default 1,000); ingest: in total (default 100,000)
	Rate     float64 // fanout, rooms: msg/s per room; ingest: msg/s in total; 0 = as fast as acks come back
	Window   int     // sends in flight per WebSocket publisher (default 64 for fanout and rooms, 1 for ingest)
	Pubs     int     // fanout, rooms: publisher connections per room sharing its messages and rate (default 1)
	Batch    int     // connections dialed at once while connecting (default 100)
	Senders  int     // ingest: concurrent senders (default 100)
	Conns    int     // idle: connections (default 1,000)
	Users    int     // distinct guest names the subscribers share (default 100; at most one per subscriber)
	BodySize int     // message body length in bytes (default 64, at least the 19-digit timestamp)

	Duration time.Duration // hard cap on the whole run (default 60 s): it always stops by itself
	Settle   time.Duration // wait after connecting before measuring RSS (default 1 s; idle 5 s)
	Drain    time.Duration // after the last ack, wait at most this long without progress for deliveries (default 5 s)
	Bucket   time.Duration // latency timeline resolution (default 100 ms)
	PollWait time.Duration // long-poll wait parameter (default 60 s)

	PID  int   // server process to sample for RSS and CPU (0 = none)
	PIDs []int // more server processes (nodes), sampled with PID and summed

	Progress      io.Writer     // live progress (nil = none)
	ProgressTTY   bool          // Progress is a terminal: redraw one line every second
	ProgressEvery time.Duration // interval when not a terminal (default 5 s)
}

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Transport == "" {
		c.Transport = "ws"
	}
	switch c.Scenario {
	case "rooms":
		def(&c.Subs, 10)
		def(&c.Rooms, 10)
	case "ingest":
		def(&c.Rooms, 1)
		def(&c.Senders, 100)
		def(&c.Messages, 100000)
		def(&c.Window, 1)
	case "idle":
		def(&c.Conns, 1000)
		if c.Settle == 0 {
			c.Settle = 5 * time.Second
		}
	}
	def(&c.Subs, 100)
	def(&c.Rooms, 1)
	def(&c.Messages, 1000)
	def(&c.Window, 64)
	def(&c.Pubs, 1)
	def(&c.Batch, 100)
	def(&c.Users, 100)
	def(&c.BodySize, 64)
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = time.Second
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if c.Bucket == 0 {
		c.Bucket = 100 * time.Millisecond
	}
	if c.PollWait == 0 {
		c.PollWait = 60 * time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return c
}

// Validate checks the configuration after defaults, naming the flag at fault.
func (c Config) Validate() error {
	switch c.Scenario {
	case "fanout", "rooms", "ingest", "idle":
	case "":
		return fmt.Errorf("name a scenario: fanout, rooms, ingest or idle")
	default:
		return fmt.Errorf("unknown scenario %q: use fanout, rooms, ingest or idle", c.Scenario)
	}
	if c.URL == "" {
		return fmt.Errorf("--url is required (or --spawn to start a server)")
	}
	if _, err := parseBaseURL(c.URL); err != nil {
		return err
	}
	for _, u := range append([]string{c.URL}, c.SubURLs...) {
		if _, err := parseBaseURL(u); err != nil {
			return err
		}
		if !c.AllowRemote {
			if err := CheckLoopback(u); err != nil {
				return err
			}
		}
	}
	switch c.Transport {
	case "ws", "sse", "poll":
	default:
		return fmt.Errorf("--transport must be ws, sse or poll, not %q", c.Transport)
	}
	positive := []struct {
		name string
		v    int
	}{
		{"--subs", c.Subs}, {"--rooms", c.Rooms}, {"--window", c.Window}, {"--batch", c.Batch},
		{"--senders", c.Senders}, {"--conns", c.Conns}, {"--publishers", c.Pubs},
	}
	for _, p := range positive {
		if p.v < 0 {
			return fmt.Errorf("%s must be positive, not %d", p.name, p.v)
		}
	}
	if c.Messages < 0 || c.Messages > 100_000_000 {
		return fmt.Errorf("--messages must be from 1 to 100,000,000, not %d", c.Messages)
	}
	if c.Users < 0 {
		return fmt.Errorf("--users must be positive, not %d", c.Users)
	}
	if c.Rate < 0 || c.Rate != c.Rate {
		return fmt.Errorf("--rate must be 0 (as fast as acknowledged) or a positive number of messages per second, not %v", c.Rate)
	}
	if c.BodySize < 19 || c.BodySize > 4096 {
		return fmt.Errorf("--body-size must be from 19 (the timestamp) to 4096 bytes, not %d", c.BodySize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--duration", c.Duration}, {"--settle", c.Settle}, {"--drain", c.Drain}, {"--bucket", c.Bucket}, {"--poll-wait", c.PollWait}} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, not %v", d.name, d.v)
		}
	}
	if c.PollWait > 60*time.Second {
		return fmt.Errorf("--poll-wait is at most 60s (the protocol's limit), not %v", c.PollWait)
	}
	if c.Room != "" && !validRoomName(c.Room) {
		return fmt.Errorf("--room %q is not a room name: 1 to 64 of a-z 0-9 _ - starting with a letter or digit", c.Room)
	}
	if c.Scenario == "rooms" && c.Room != "" {
		return fmt.Errorf("--room names one room; the rooms scenario makes --rooms fresh ones")
	}
	if c.Scenario == "ingest" && c.Senders < c.Rooms {
		return fmt.Errorf("--senders (%d) must be at least --rooms (%d)", c.Senders, c.Rooms)
	}
	if c.Scenario == "ingest" && c.Messages < c.Senders {
		return fmt.Errorf("--messages (%d) must be at least --senders (%d)", c.Messages, c.Senders)
	}
	if c.Scenario == "idle" && c.Transport == "poll" && c.PollWait < time.Second {
		return fmt.Errorf("--poll-wait below 1s does not park long-polls")
	}
	return nil
}

func validRoomName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// NeededFiles estimates the file descriptors a run needs in each process: one per connection
// plus slack for the HTTP API, listeners and the database.
func (c Config) NeededFiles() int {
	c = c.withDefaults()
	n := 0
	switch c.Scenario {
	case "fanout":
		n = c.Subs + c.Pubs
	case "rooms":
		n = c.Rooms * (c.Subs + c.Pubs)
	case "ingest":
		n = c.Senders
	case "idle":
		n = c.Conns
	}
	return n + 64
}

// roomRun is one room of a run: its window of seqs, its acks and its subscribers.
type roomRun struct {
	name string
	base int64 // the room's last seq before the run: the window is (base, base+span]
	span int64
	acks *ackLog
	subs []*subscriber
}

// endpoint is one server subscribers connect to.
type endpoint struct {
	base     string // base URL without trailing slash
	host     string // Host header
	hostPort string // dial address
	wsURL    string
}

// newEndpoint reads a base URL (already validated).
func newEndpoint(raw string) *endpoint {
	u, _ := url.Parse(raw)
	hostPort := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		hostPort = net.JoinHostPort(u.Hostname(), port)
	}
	base := u.Scheme + "://" + u.Host
	return &endpoint{base: base, host: u.Host, hostPort: hostPort, wsURL: wsURL(base)}
}

// runner holds one run's shared state; counters are atomic because every connection's goroutine
// updates them.
type runner struct {
	cfg      Config
	loops    []*pollLoop // read subscribed WebSockets, one per CPU (Linux); none: each subscriber reads its own
	runID    string
	base     string      // base URL without trailing slash
	nodes    []*endpoint // where subscribers connect, in turn: URL, then SubURLs
	wsURL    string
	api      *api
	pollHTTP *http.Client
	dialer   ws.Dialer

	lat, ackLat *recorder

	deliveries, unique counter
	connected          atomic.Int64
	slow               atomic.Int64
	disconnects        atomic.Int64
	reconnects         atomic.Int64
	frameErrors        atomic.Int64
	published, acked   atomic.Int64
	peakInFlight       atomic.Int64 // most sends of one WebSocket publisher unanswered at once
	sendErrors         atomic.Int64
	phase              atomic.Pointer[string]

	errMu    sync.Mutex
	firstErr string
	errCount int64

	sampler *sampler
	started time.Time
	rooms   []*roomRun
	res     *Result
}

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

// noteError keeps the first error seen on a connection, for the report.
func (r *runner) noteError(err error) {
	if err == nil {
		return
	}
	r.errMu.Lock()
	if r.firstErr == "" {
		r.firstErr = err.Error()
	}
	r.errCount++
	r.errMu.Unlock()
}

// Run executes one scenario and returns its figures. It stops by itself at cfg.Duration at the
// latest (the result then says so); an error means the run could not be carried out at all.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nodes := []*endpoint{newEndpoint(cfg.URL)}
	for _, u := range cfg.SubURLs {
		nodes = append(nodes, newEndpoint(u))
	}
	for _, n := range nodes {
		if strings.HasPrefix(n.base, "https:") && cfg.Transport == "sse" {
			return nil, fmt.Errorf("--transport sse speaks plain HTTP: use http:// URLs")
		}
	}
	base := nodes[0].base
	maxConns := max(cfg.Subs*cfg.Rooms, cfg.Conns, cfg.Senders) + 16
	r := &runner{
		cfg:     cfg,
		runID:   strconv.FormatInt(time.Now().UnixNano()%(36*36*36*36*36*36), 36),
		base:    base,
		nodes:   nodes,
		wsURL:   nodes[0].wsURL,
		api:     newAPI(base, 16),
		lat:     newRecorder(cfg.Bucket),
		ackLat:  newRecorder(cfg.Bucket),
		started: time.Now(),
	}
	r.pollHTTP = newAPI(base, maxConns).http
	defer r.api.close()
	defer r.pollHTTP.CloseIdleConnections()
	shown := base
	for _, n := range nodes[1:] {
		shown += ", " + n.base
	}
	r.res = &Result{Scenario: cfg.Scenario, Transport: cfg.Transport, URL: shown, Started: r.started, Params: paramsOf(cfg)}
	r.res.LoadAvg[0] = loadAvg()
	defer func() { r.res.LoadAvg[1] = loadAvg() }()
	r.setPhase("starting")

	if cfg.Transport == "ws" && (cfg.Scenario == "fanout" || cfg.Scenario == "rooms") {
		// One loop costs least per delivery (a paced fan-out to 10,000: a tenth less CPU, and
		// the server gets it); as fast as acknowledged, reading is the limit and every CPU reads.
		loops := 1
		if cfg.Rate == 0 {
			loops = runtime.GOMAXPROCS(0)
		}
		for range loops {
			l, err := newPollLoop()
			if err != nil {
				break // each subscriber reads its own socket
			}
			r.loops = append(r.loops, l)
			defer l.close()
		}
	}
	if cfg.PID > 0 {
		s, err := startSampler(append([]int{cfg.PID}, cfg.PIDs...), r.started, 250*time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("--pid %d: %w", cfg.PID, err)
		}
		r.sampler = s
		defer s.close()
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	stopProgress := r.startProgress()
	cpu0 := selfCPU()

	var err error
	switch cfg.Scenario {
	case "fanout", "rooms":
		err = r.runFanout(runCtx)
	case "ingest":
		err = r.runIngest(runCtx)
	case "idle":
		err = r.runIdle(runCtx)
	}
	stopProgress()
	res := r.res
	res.ElapsedS = time.Since(r.started).Seconds()
	res.BenchCPUS = selfCPU() - cpu0
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		res.StoppedByCap = true
		res.Notes = append(res.Notes, fmt.Sprintf("stopped at the --duration cap of %v: figures are partial", cfg.Duration))
		// Messages acked just before the cap may still be on their way: only gaps are losses.
		res.InFlightAtStop, res.Lost = res.Lost-res.lostGaps, res.lostGaps
		err = nil
	}
	if ctx.Err() != nil && err != nil {
		res.Notes = append(res.Notes, "interrupted: figures are partial")
		err = nil
	}
	r.errMu.Lock()
	res.ConnectionErrors, res.FirstError = r.errCount, r.firstErr
	r.errMu.Unlock()
	switch {
	case strings.Contains(res.FirstError, "one client address may have"):
		res.Notes = append(res.Notes, "the server limits open connections per client address: start it with --max-addr-conns -1 (as --spawn does)")
	case strings.Contains(res.FirstError, "open connection"):
		// The server's connection limits (rate_limited per user, unavailable in all).
		res.Notes = append(res.Notes, "the server limits open connections: spread them over more --users, or start it with a higher --max-user-conns or --max-conns (--server-arg with --spawn)")
	case strings.Contains(res.FirstError, "rate_limited"):
		res.Notes = append(res.Notes, "the server limits send rates: start it with --send-rate -1 (as --spawn does)")
	}
	res.ProcSeries, res.PeakRSSKiB = r.sampler.snapshot()
	if err != nil {
		return res, err
	}
	return res, nil
}

// signInUsers signs in n guests named prefix-0 ... prefix-(n-1), a few at a time.
func (r *runner) signInUsers(ctx context.Context, prefix string, n int) ([]string, error) {
	tokens := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t, err := r.api.signIn(ctx, fmt.Sprintf("%s-%d", prefix, i))
			if err != nil {
				errs <- err
				return
			}
			tokens[i] = t
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return tokens, nil
}

// roomNames returns the rooms of the run: cfg.Room, or fresh names so that seqs start at 1.
func (r *runner) roomNames(n int) []string {
	if r.cfg.Room != "" {
		return []string{r.cfg.Room}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%d", r.runID, i)
	}
	return names
}

// setupRooms signs in the admin guest and creates (or finds) the rooms.
func (r *runner) setupRooms(ctx context.Context, n int, span int64) (string, error) {
	token, err := r.api.signIn(ctx, "bench-admin")
	if err != nil {
		return "", err
	}
	for _, name := range r.roomNames(n) {
		info, err := r.api.ensureRoom(ctx, token, name)
		if err != nil {
			return "", err
		}
		r.rooms = append(r.rooms, &roomRun{name: name, base: info.LastSeq, span: span, acks: newAckLog(info.LastSeq, span)})
	}
	return token, nil
}

// connect starts every subscriber's goroutine, batch by batch, and waits until each batch has
// subscribed. The goroutines run until ctx ends; wg tracks them.
func (r *runner) connect(ctx context.Context, subs []*subscriber, wg *sync.WaitGroup) error {
	for start := 0; start < len(subs); start += r.cfg.Batch {
		batch := subs[start:min(start+r.cfg.Batch, len(subs))]
		for _, s := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(ctx, r)
			}()
		}
		for _, s := range batch {
			select {
			case <-s.ready:
			case <-ctx.Done():
				return ctx.Err()
			}
			if s.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("subscriber %d of %d could not subscribe: %w", s.idx+1, len(subs), s.err)
			}
		}
	}
	return nil
}

// makeSubscribers creates per-room subscribers, signing in the distinct guest names they share.
func (r *runner) makeSubscribers(ctx context.Context, perRoom int) ([]*subscriber, error) {
	total := perRoom * len(r.rooms)
	users := min(r.cfg.Users, total)
	tokens, err := r.signInUsers(ctx, "bench-sub", users)
	if err != nil {
		return nil, err
	}
	subs := make([]*subscriber, 0, total)
	// Interleave rooms so that every batch touches every room, as real clients would.
	for i := 0; i < perRoom; i++ {
		for _, room := range r.rooms {
			s := &subscriber{idx: len(subs), node: r.nodes[len(subs)%len(r.nodes)], room: room, token: tokens[len(subs)%users], ready: make(chan struct{})}
			s.t = newTracker(room.base, room.span)
			room.subs = append(room.subs, s)
			subs = append(subs, s)
		}
	}
	return subs, nil
}

// measureConnect fills the connection figures around a connect phase.
func (r *runner) measureConnect(ctx context.Context, subs []*subscriber, wg *sync.WaitGroup) error {
	res := r.res
	before, haveBefore := r.sampler.sample()
	r.setPhase("connecting")
	t := time.Now()
	err := r.connect(ctx, subs, wg)
	res.ConnectS = time.Since(t).Seconds()
	res.Connections = int(r.connected.Load())
	if res.ConnectS > 0 {
		res.ConnectsPerS = float64(res.Connections) / res.ConnectS
	}
	if err != nil {
		return err
	}
	r.setPhase("settling")
	select {
	case <-time.After(r.cfg.Settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	after, haveAfter := r.sampler.sample()
	if haveBefore && haveAfter && len(subs) > 0 {
		res.RSSBeforeKiB, res.RSSAfterKiB = before.RSSKiB, after.RSSKiB
		res.RSSPerConnKiB = float64(after.RSSKiB-before.RSSKiB) / float64(len(subs))
	}
	return nil
}

// runFanout is fanout (one room) and rooms (several): subscribers first, then one publisher per
// room, then a drain until every acked message reached every subscriber.
func (r *runner) runFanout(ctx context.Context) error {
	cfg, res := r.cfg, r.res
	nRooms := 1
	if cfg.Scenario == "rooms" {
		nRooms = cfg.Rooms
	}
	r.setPhase("setup")
	pubToken, err := r.setupRooms(ctx, nRooms, int64(cfg.Messages))
	if err != nil {
		return err
	}
	subs, err := r.makeSubscribers(ctx, cfg.Subs)
	if err != nil {
		return err
	}
	res.Rooms, res.Subscribers = len(r.rooms), len(subs)

	subCtx, stopSubs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopSubs()
		wg.Wait()
		r.collectDeliveries(subs)
	}()
	if err := r.measureConnect(subCtx, subs, &wg); err != nil {
		return err
	}

	// Publish.
	r.setPhase("publishing")
	cpu0, haveCPU := r.sampler.sample()
	t0 := time.Now()
	r.lat.start(t0)
	r.ackLat.start(t0)
	// A room's messages and rate are split over its publisher connections.
	pubErrs := make(chan error, len(r.rooms)*cfg.Pubs)
	for i, room := range r.rooms {
		for j := range cfg.Pubs {
			n := cfg.Messages / cfg.Pubs
			if j < cfg.Messages%cfg.Pubs {
				n++
			}
			p := r.newPublisher(i*cfg.Pubs+j, room, pubToken, n, cfg.Rate/float64(cfg.Pubs))
			go func() { pubErrs <- p.runWS(ctx, r) }()
		}
	}
	var pubErr error
	for range len(r.rooms) * cfg.Pubs {
		if err := <-pubErrs; err != nil && pubErr == nil {
			pubErr = err
		}
	}
	res.PublishS = time.Since(t0).Seconds()
	if pubErr != nil && ctx.Err() == nil {
		r.noteError(pubErr)
		res.Notes = append(res.Notes, "a publisher failed: "+pubErr.Error())
	}

	// Drain: wait until every subscriber has every acked message, or progress stops.
	r.setPhase("draining")
	var expected int64
	for _, room := range r.rooms {
		expected += room.acks.acks() * int64(len(room.subs))
	}
	last, lastChange := r.unique.load(), time.Now()
	for r.unique.load() < expected && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if u := r.unique.load(); u != last {
			last, lastChange = u, time.Now()
		} else if time.Since(lastChange) > cfg.Drain {
			res.Notes = append(res.Notes, fmt.Sprintf("deliveries stopped progressing for %v before every subscriber had every message", cfg.Drain))
			break
		}
	}
	if cpu1, ok := r.sampler.sample(); ok && haveCPU {
		res.ServerCPUS = cpu1.CPUS - cpu0.CPUS
	}
	if lr := r.lat.lastReceive(); lr > 0 {
		res.DeliveryS = float64(lr-t0.UnixNano()) / 1e9
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// collectDeliveries sums the subscribers' trackers once their goroutines have stopped.
func (r *runner) collectDeliveries(subs []*subscriber) {
	res := r.res
	ackedByRoom := make(map[*roomRun][]uint64)
	for _, room := range r.rooms {
		bits, n := room.acks.snapshot()
		ackedByRoom[room] = bits
		res.Acked += n
		res.Expected += n * int64(len(room.subs))
		res.DuplicateAcks += room.acks.dups
	}
	for _, s := range subs {
		res.Deliveries += s.t.deliveries
		res.Unique += s.t.unique
		res.Duplicated += s.t.dups
		res.OutOfOrder += s.t.outOfOrder
		res.Foreign += s.t.foreign
		res.Lost += s.t.missing(ackedByRoom[s.room])
		res.lostGaps += s.t.missingBelowHighest(ackedByRoom[s.room])
	}
	res.Published = r.published.Load()
	res.PeakInFlight = r.peakInFlight.Load()
	res.SendErrors = r.sendErrors.Load()
	res.SlowDisconnects = r.slow.Load()
	res.OtherDisconnects = r.disconnects.Load()
	res.Reconnects = r.reconnects.Load()
	if res.DeliveryS > 0 {
		res.DeliveriesPerS = float64(res.Deliveries) / res.DeliveryS
	}
	if res.PublishS > 0 {
		res.AckedPerS = float64(res.Acked) / res.PublishS
	}
	if res.Deliveries > 0 && res.ServerCPUS > 0 {
		res.ServerCPUPerMillion = res.ServerCPUS / float64(res.Deliveries) * 1e6
	}
	h, tl := r.lat.result()
	res.Latency, res.Timeline = h.stats(), tl
	ah, atl := r.ackLat.result()
	res.AckLatency, res.AckTimeline = ah.stats(), atl
}

// runIngest measures acknowledged sends from many concurrent senders.
func (r *runner) runIngest(ctx context.Context) error {
	cfg, res := r.cfg, r.res
	r.setPhase("setup")
	if _, err := r.setupRooms(ctx, cfg.Rooms, int64(cfg.Messages)); err != nil {
		return err
	}
	tokens, err := r.signInUsers(ctx, "bench-send", cfg.Senders)
	if err != nil {
		return err
	}
	res.Rooms, res.Senders = len(r.rooms), cfg.Senders
	var rate float64
	if cfg.Rate > 0 {
		rate = cfg.Rate / float64(cfg.Senders)
	}
	pubs := make([]*publisher, cfg.Senders)
	for i := range pubs {
		n := cfg.Messages / cfg.Senders
		if i < cfg.Messages%cfg.Senders {
			n++
		}
		pubs[i] = r.newPublisher(i, r.rooms[i%len(r.rooms)], tokens[i], n, rate)
	}
	r.setPhase("sending")
	cpu0, haveCPU := r.sampler.sample()
	t0 := time.Now()
	r.ackLat.start(t0)
	errs := make(chan error, len(pubs))
	for _, p := range pubs {
		go func() {
			if cfg.Transport == "ws" {
				errs <- p.runWS(ctx, r)
			} else {
				errs <- p.runHTTP(ctx, r)
			}
		}()
	}
	var firstErr error
	for range pubs {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	elapsed := time.Since(t0)
	if cpu1, ok := r.sampler.sample(); ok && haveCPU {
		res.ServerCPUS = cpu1.CPUS - cpu0.CPUS
	}
	if lr := r.ackLat.lastReceive(); lr > 0 {
		elapsed = time.Duration(lr - t0.UnixNano())
	}
	res.PublishS = elapsed.Seconds()
	res.Published = r.published.Load()
	res.PeakInFlight = r.peakInFlight.Load()
	res.SendErrors = r.sendErrors.Load()
	for _, room := range r.rooms {
		res.Acked += room.acks.acks()
		res.DuplicateAcks += room.acks.dups
	}
	if res.PublishS > 0 {
		res.AckedPerS = float64(res.Acked) / res.PublishS
	}
	if res.Acked > 0 && res.ServerCPUS > 0 {
		res.ServerCPUPerMillion = res.ServerCPUS / float64(res.Acked) * 1e6
	}
	h, tl := r.ackLat.result()
	res.AckLatency, res.AckTimeline = h.stats(), tl
	if firstErr != nil && !errors.Is(firstErr, context.DeadlineExceeded) && !errors.Is(firstErr, context.Canceled) {
		r.noteError(firstErr)
		res.Notes = append(res.Notes, "a sender failed: "+firstErr.Error())
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The rooms' logs must have grown by exactly the acked messages.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := r.api.signIn(cctx, "bench-admin")
	if err != nil {
		return err
	}
	for _, room := range r.rooms {
		info, err := r.api.room(cctx, tok, room.name)
		if err != nil {
			return err
		}
		res.StoredDelta += info.LastSeq - room.base
	}
	return nil
}

// runIdle opens connections that only wait, then measures the server's RSS per connection.
func (r *runner) runIdle(ctx context.Context) error {
	cfg, res := r.cfg, r.res
	r.setPhase("setup")
	if _, err := r.setupRooms(ctx, 1, 0); err != nil {
		return err
	}
	subs, err := r.makeSubscribers(ctx, cfg.Conns)
	if err != nil {
		return err
	}
	res.Rooms, res.Subscribers = 1, len(subs)
	subCtx, stopSubs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopSubs()
		wg.Wait()
		res.SlowDisconnects = r.slow.Load()
		res.OtherDisconnects = r.disconnects.Load()
		res.Reconnects = r.reconnects.Load()
	}()
	return r.measureConnect(subCtx, subs, &wg)
}

// Validate applies the defaults to c and checks the result, as Run does first.
func Validate(c Config) error { return c.withDefaults().Validate() }
