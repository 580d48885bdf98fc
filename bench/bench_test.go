package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"natter"
	"natter/app"
	"natter/internal/redistest"
	"natter/server"
)

// startServer runs a whole natter in-process on a random loopback port with guests on and no
// send or sign-in rate limits, as `natter bench --spawn` would.
func startServer(tb testing.TB, tweak func(*server.Config)) string {
	return startNode(tb, tweak, "", "")
}

// startNode is startServer on the Redis at redisURL under prefix, when redisURL is not "".
func startNode(tb testing.TB, tweak func(*server.Config), redisURL, prefix string) string {
	tb.Helper()
	sc := server.Config{Guests: true, SendRate: -1, SignInRate: -1}
	if tweak != nil {
		tweak(&sc)
	}
	m, err := app.Open(context.Background(), app.Config{
		Addr:        "127.0.0.1:0",
		DataDir:     tb.TempDir(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:        "NORMAL",
		Server:      sc,
		Redis:       redisURL,
		RedisPrefix: prefix,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m.URL()
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	if cfg.Duration == 0 {
		cfg.Duration = 60 * time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = 50 * time.Millisecond
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if testing.Verbose() {
		res.WriteTable(os.Stderr)
	}
	if res.StoppedByCap {
		t.Fatalf("the run hit its duration cap: %v", res.Notes)
	}
	return res
}

// checkDelivery asserts exact delivery accounting: nothing lost, duplicated or reordered, and every
// count adding up.
func checkDelivery(t *testing.T, res *Result, subs, messages int) {
	t.Helper()
	checkRooms(t, res, 1, subs, messages)
}

// checkRooms is checkDelivery for rooms x subsPerRoom subscribers and messages per room.
func checkRooms(t *testing.T, res *Result, rooms, subsPerRoom, perRoom int) {
	t.Helper()
	subs, messages := rooms*subsPerRoom, rooms*perRoom
	if res.Connections != subs {
		t.Errorf("connections = %d, want %d", res.Connections, subs)
	}
	if res.Published != int64(messages) || res.Acked != int64(messages) || res.SendErrors != 0 {
		t.Errorf("published %d, acked %d, refused %d; want %d, %d, 0", res.Published, res.Acked, res.SendErrors, messages, messages)
	}
	want := int64(subs) * int64(perRoom)
	if res.Expected != want {
		t.Errorf("expected = %d, want %d", res.Expected, want)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.DuplicateAcks != 0 {
		t.Errorf("lost %d, duplicated %d, out of order %d, duplicate acks %d; want all 0", res.Lost, res.Duplicated, res.OutOfOrder, res.DuplicateAcks)
	}
	if res.Unique != want || res.Deliveries != want {
		t.Errorf("unique %d, deliveries %d, want %d each", res.Unique, res.Deliveries, want)
	}
	if res.Latency.Count != uint64(want) {
		t.Errorf("latency samples = %d, want %d", res.Latency.Count, want)
	}
	if res.AckLatency.Count != uint64(messages) {
		t.Errorf("ack latency samples = %d, want %d", res.AckLatency.Count, messages)
	}
	var inTimeline uint64
	for _, b := range res.Timeline {
		inTimeline += b.Count
	}
	if inTimeline != res.Latency.Count {
		t.Errorf("timeline holds %d samples, latency %d", inTimeline, res.Latency.Count)
	}
}

func TestFanout(t *testing.T) {
	url := startServer(t, nil)
	for _, tr := range []string{"ws", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			res := run(t, Config{Scenario: "fanout", URL: url, Transport: tr, Subs: 20, Messages: 200, Batch: 7, Users: 5, PID: os.Getpid()})
			checkDelivery(t, res, 20, 200)
			if res.RSSAfterKiB <= 0 || res.PeakRSSKiB <= 0 {
				t.Errorf("RSS was not sampled: after %d, peak %d", res.RSSAfterKiB, res.PeakRSSKiB)
			}
		})
	}
}

func TestFanoutPaced(t *testing.T) {
	url := startServer(t, nil)
	res := run(t, Config{Scenario: "fanout", URL: url, Subs: 10, Messages: 50, Rate: 500, Window: 4})
	checkDelivery(t, res, 10, 50)
	// Several publisher connections share one room's messages; seqs interleave but stay exact.
	res = run(t, Config{Scenario: "fanout", URL: url, Subs: 10, Messages: 51, Pubs: 4})
	checkDelivery(t, res, 10, 51)
}

// TestFanoutExistingRoom runs twice in one named room: the second run's window starts after the
// first run's messages, which it must not count.
func TestFanoutExistingRoom(t *testing.T) {
	url := startServer(t, nil)
	for range 2 {
		res := run(t, Config{Scenario: "fanout", URL: url, Room: "shared-room", Subs: 5, Messages: 30})
		checkDelivery(t, res, 5, 30)
	}
}

func TestRooms(t *testing.T) {
	url := startServer(t, nil)
	res := run(t, Config{Scenario: "rooms", URL: url, Rooms: 3, Subs: 5, Messages: 60, Users: 1000})
	checkRooms(t, res, 3, 5, 60)
}

// TestSlowSubscribersResume gives each connection a tiny outbox so that bursts close subscribers
// with 4008; they must resume with after and still end with every message exactly once. The
// publisher's window is kept small enough that its acks fit its own outbox.
func TestSlowSubscribersResume(t *testing.T) {
	url := startServer(t, func(c *server.Config) { c.QueueBytes = 4096 })
	res := run(t, Config{Scenario: "fanout", URL: url, Subs: 20, Messages: 300, Window: 16, BodySize: 400, Users: 2})
	t.Logf("slow disconnects: %d, reconnects: %d", res.SlowDisconnects, res.Reconnects)
	if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 {
		t.Errorf("lost %d, duplicated %d, out of order %d; want 0", res.Lost, res.Duplicated, res.OutOfOrder)
	}
	if want := int64(20 * 300); res.Unique != want || res.Expected != want || res.Acked != 300 {
		t.Errorf("unique %d, expected %d, acked %d; want %d, %d, 300", res.Unique, res.Expected, res.Acked, want, want)
	}
}

func TestIngest(t *testing.T) {
	url := startServer(t, nil)
	for _, tr := range []string{"ws", "poll"} {
		t.Run(tr, func(t *testing.T) {
			res := run(t, Config{Scenario: "ingest", URL: url, Transport: tr, Senders: 10, Messages: 303, Rooms: 2})
			if res.Published != 303 || res.Acked != 303 || res.SendErrors != 0 || res.DuplicateAcks != 0 {
				t.Errorf("published %d, acked %d, refused %d, duplicate acks %d", res.Published, res.Acked, res.SendErrors, res.DuplicateAcks)
			}
			if res.StoredDelta != 303 {
				t.Errorf("the rooms grew by %d messages, want 303", res.StoredDelta)
			}
			if res.AckLatency.Count != 303 {
				t.Errorf("ack latency samples = %d, want 303", res.AckLatency.Count)
			}
			if tr == "ws" && res.PeakInFlight != 1 {
				t.Errorf("peak sends in flight = %d, want 1 (the default window)", res.PeakInFlight)
			}
		})
	}
}

// TestIngestWindow checks that each sender keeps at most --window sends unanswered, and that
// with a window it does pipeline.
func TestIngestWindow(t *testing.T) {
	url := startServer(t, nil)
	res := run(t, Config{Scenario: "ingest", URL: url, Senders: 3, Messages: 3000, Window: 8})
	if res.Published != 3000 || res.Acked != 3000 || res.StoredDelta != 3000 {
		t.Errorf("published %d, acked %d, stored %d; want 3000 each", res.Published, res.Acked, res.StoredDelta)
	}
	if res.PeakInFlight < 2 || res.PeakInFlight > 8 {
		t.Errorf("peak sends in flight = %d, want 2..8 with --window 8", res.PeakInFlight)
	}
}

func TestIdle(t *testing.T) {
	url := startServer(t, nil)
	for _, tr := range []string{"ws", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			res := run(t, Config{Scenario: "idle", URL: url, Transport: tr, Conns: 25, PollWait: 2 * time.Second, Settle: 100 * time.Millisecond, PID: os.Getpid()})
			if res.Connections != 25 {
				t.Errorf("connections = %d, want 25", res.Connections)
			}
			if res.RSSAfterKiB <= 0 {
				t.Errorf("RSS was not sampled")
			}
		})
	}
}

// TestConnectionLimitNote: subscribers refused by the server's connection limit end the run with
// that error and a note on what to change, not the note about send rates.
func TestConnectionLimitNote(t *testing.T) {
	url := startServer(t, func(c *server.Config) { c.MaxUserConns = 3 })
	res, err := Run(context.Background(), Config{Scenario: "idle", URL: url, Conns: 8, Users: 2, Settle: 50 * time.Millisecond, Duration: 30 * time.Second})
	if err == nil {
		t.Fatal("8 connections of 2 users past a limit of 3 per user: the run did not fail")
	}
	if res == nil || !strings.Contains(res.FirstError, "open connection") {
		t.Fatalf("first error %v, want the server's connection-limit refusal", res)
	}
	if len(res.Notes) == 0 || !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "--max-user-conns") }) || slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "--send-rate") }) {
		t.Fatalf("notes %q: want the connection-limit note only", res.Notes)
	}
}

// TestSignInLimitError: a run that signs in more guests than the server's sign-ins per address
// allow fails with the refusal and the flag that lifts it.
func TestSignInLimitError(t *testing.T) {
	url := startServer(t, func(c *server.Config) { c.SignInRate = 3 })
	_, err := Run(context.Background(), Config{Scenario: "idle", URL: url, Conns: 8, Users: 8, Settle: 50 * time.Millisecond, Duration: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "too many sign-ins") || !strings.Contains(err.Error(), "--signin-rate -1") {
		t.Fatalf("8 guests past 3 sign-ins a minute: %v; want the refusal and the flag", err)
	}
}

// TestFanoutAcrossNodes: with SubURLs the subscribers connect to two nodes of one natter on
// Redis, in turn, while the publisher sends to the first: every subscriber on either node gets
// every message, in order.
func TestFanoutAcrossNodes(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	a, b := startNode(t, nil, url, prefix), startNode(t, nil, url, prefix)
	for _, tr := range []string{"ws", "sse", "poll"} {
		res := run(t, Config{Scenario: "fanout", URL: a, SubURLs: []string{b}, Transport: tr, Subs: 20, Messages: 100, Rate: 0})
		if res.Deliveries != 2000 || res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 {
			t.Fatalf("%s across two nodes: %d deliveries, %d lost, %d duplicated, %d out of order; want 2000 and none", tr, res.Deliveries, res.Lost, res.Duplicated, res.OutOfOrder)
		}
		if !strings.Contains(res.URL, b) {
			t.Fatalf("the report names %q, not the second node %s", res.URL, b)
		}
	}
	// Half the subscribers really go to the second node: with nothing there, the run fails.
	dead := httptestDeadURL(t)
	if _, err := Run(context.Background(), Config{Scenario: "fanout", URL: a, SubURLs: []string{dead}, Subs: 4, Messages: 10, Duration: 20 * time.Second}); err == nil {
		t.Fatalf("subscribers spread to %s, where nothing listens, and the run succeeded", dead)
	}
}

// httptestDeadURL returns a loopback URL where nothing listens.
func httptestDeadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestDurationCapStopsTheRun(t *testing.T) {
	url := startServer(t, nil)
	res, err := Run(context.Background(), Config{Scenario: "fanout", URL: url, Subs: 2, Messages: 100000, Rate: 50, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedByCap {
		t.Errorf("StoppedByCap is false")
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 {
		t.Errorf("lost %d, duplicated %d, out of order %d", res.Lost, res.Duplicated, res.OutOfOrder)
	}
}

func TestLoopbackGuard(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "http://127.3.4.5", "https://app.localhost:9"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://192.168.1.2", "http://example.com", "http://0.0.0.0:80", "http://[2001:db8::1]:80"} {
		err := CheckLoopback(u)
		if err == nil || !strings.Contains(err.Error(), "--allow-remote") {
			t.Errorf("CheckLoopback(%q) = %v, want a refusal naming --allow-remote", u, err)
		}
	}
	// Run refuses before connecting anywhere.
	res, err := Run(context.Background(), Config{Scenario: "fanout", URL: "http://10.255.255.1:8080"})
	if err == nil || res != nil {
		t.Fatalf("Run against a non-loopback URL = %v, %v; want a refusal", res, err)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Scenario: "fanout", URL: "http://127.0.0.1:1"}
	if err := Validate(ok); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	bad := map[string]Config{
		"scenario":  {Scenario: "nope", URL: ok.URL},
		"no url":    {Scenario: "fanout"},
		"scheme":    {Scenario: "fanout", URL: "ftp://127.0.0.1"},
		"transport": {Scenario: "fanout", URL: ok.URL, Transport: "carrier-pigeon"},
		"subs":      {Scenario: "fanout", URL: ok.URL, Subs: -1},
		"rate":      {Scenario: "fanout", URL: ok.URL, Rate: -3},
		"body":      {Scenario: "fanout", URL: ok.URL, BodySize: 5},
		"room":      {Scenario: "fanout", URL: ok.URL, Room: "Bad Room"},
		"poll wait": {Scenario: "idle", URL: ok.URL, PollWait: 2 * time.Minute},
		"senders":   {Scenario: "ingest", URL: ok.URL, Senders: 10, Messages: 5},
		"duration":  {Scenario: "fanout", URL: ok.URL, Duration: -time.Second},
	}
	for name, c := range bad {
		if err := Validate(c); err == nil {
			t.Errorf("%s: Validate(%+v) = nil, want an error", name, c)
		}
	}
}

func TestTrackerResume(t *testing.T) {
	tr := newTracker(10, 20) // window 11..30
	for _, s := range []int64{11, 12, 13} {
		tr.add(s)
	}
	if after := tr.resume(); after != 13 {
		t.Fatalf("resume after = %d, want 13", after)
	}
	tr.add(14)
	tr.add(13) // a replay overlap: duplicate and out of order on this connection
	tr.add(15)
	tr.add(9)  // before the window: foreign
	tr.add(31) // after it: foreign
	if tr.unique != 5 || tr.dups != 1 || tr.outOfOrder != 1 || tr.foreign != 2 || tr.deliveries != 6 {
		t.Errorf("unique %d dups %d ooo %d foreign %d deliveries %d", tr.unique, tr.dups, tr.outOfOrder, tr.foreign, tr.deliveries)
	}
	acks := newAckLog(10, 20)
	for s := int64(11); s <= 17; s++ {
		acks.add(s)
	}
	bits, n := acks.snapshot()
	if n != 7 || tr.missing(bits) != 2 {
		t.Errorf("acked %d, missing %d; want 7, 2", n, tr.missing(bits))
	}
}

func TestParseMessage(t *testing.T) {
	frame := []byte(`{"type":"message","message":{"room":"r","seq":42,"id":"x","client_id":"c","author":"a","body":"1732680000123456789 pad","ts":"2026-01-01T00:00:00Z"}}`)
	seq, sent, ok := parseMessage(frame)
	if !ok || seq != 42 || sent != 1732680000123456789 {
		t.Errorf("parseMessage = %d, %d, %v", seq, sent, ok)
	}
	if _, _, ok := parseMessage([]byte(`{"type":"subscribed","room":"r","last_seq":3}`)); ok {
		t.Errorf("last_seq was taken for a seq")
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.record(v)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, want := float64(h.quantile(q)), q*100000
		if got < want*0.97 || got > want*1.03 {
			t.Errorf("quantile(%v) = %v, want %v within 3%%", q, got, want)
		}
	}
	if h.quantile(1) != 100000 {
		t.Errorf("max = %d", h.quantile(1))
	}
}

func TestPlot(t *testing.T) {
	res := &Result{Scenario: "fanout", Transport: "ws"}
	for i := range 50 {
		res.Timeline = append(res.Timeline, TimelineBucket{StartS: float64(i) / 10, Count: 10, P50MS: 0.5 + float64(i%7), P99MS: 3 + float64(i), MaxMS: 50})
	}
	dir := t.TempDir()
	pngPath, svgPath := filepath.Join(dir, "p.png"), filepath.Join(dir, "p.svg")
	if err := res.WritePlot(pngPath); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pngPath)
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != plotW {
		t.Fatalf("PNG: %v, %v", err, img)
	}
	if err := res.WritePlot(svgPath); err != nil {
		t.Fatal(err)
	}
	svg, _ := os.ReadFile(svgPath)
	if !bytes.Contains(svg, []byte("<polyline")) {
		t.Errorf("SVG has no lines")
	}
	if err := res.WritePlot(filepath.Join(dir, "p.gif")); err == nil {
		t.Errorf("a .gif plot was accepted")
	}
}

func TestMissingBelowHighestCountsGapsNotTheTail(t *testing.T) {
	tr := newTracker(0, 200)
	acked := make([]uint64, 4)
	for seq := int64(1); seq <= 150; seq++ {
		acked[(seq-1)/64] |= 1 << ((seq - 1) % 64)
	}
	for _, seq := range []int64{1, 2, 4, 70, 128, 129} { // gaps at 3, 5..69, 71..127; tail 130..150
		tr.seen[(seq-1)/64] |= 1 << ((seq - 1) % 64)
	}
	if got, want := tr.missingBelowHighest(acked), int64(129-6); got != want {
		t.Fatalf("gaps = %d, want %d", got, want)
	}
	if got, want := tr.missing(acked), int64(150-6); got != want {
		t.Fatalf("missing = %d, want %d", got, want)
	}
}

// TestParseAck: the load generator's shortcut reads natter's acks like a JSON decoder would, and
// leaves anything unusual to the decoder.
func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		id   string
		seq  int64
		okay bool
	}{
		{`{"type":"ack","client_id":"b3-17","seq":42,"room":"r","created":true}`, "b3-17", 42, true},
		{`{"type":"ack","client_id":"x","seq":9}`, "x", 9, true},
		{`{"type":"ack","client_id":"a\"b","seq":1}`, "", 0, false},
		{`{"type":"ack","client_id":"x","seq":}`, "", 0, false},
		{`{"type":"ack","client_id":"x","seq":12`, "", 0, false},
		{`{"type":"error","code":"invalid","ref":"x"}`, "", 0, false},
		{`{"client_id":"x","type":"ack","seq":1}`, "", 0, false},
	} {
		id, seq, ok := parseAck([]byte(tc.in))
		if ok != tc.okay || string(id) != tc.id || seq != tc.seq {
			t.Errorf("%s: got %q %d %v, want %q %d %v", tc.in, id, seq, ok, tc.id, tc.seq, tc.okay)
		}
	}
}

// TestResultIntact: the exit status of natter bench rests on Intact; each broken promise fails
// it, and speed or extra stored messages do not.
func TestResultIntact(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  Result
		ok   bool
	}{
		{"clean fanout", Result{Scenario: "fanout", Deliveries: 100}, true},
		{"lost", Result{Scenario: "fanout", Lost: 1}, false},
		{"duplicated", Result{Scenario: "fanout", Duplicated: 1}, false},
		{"out of order", Result{Scenario: "rooms", OutOfOrder: 1}, false},
		{"ingest stored all", Result{Scenario: "ingest", Acked: 10, StoredDelta: 10}, true},
		{"ingest stored more (cut short)", Result{Scenario: "ingest", Acked: 10, StoredDelta: 12}, true},
		{"ingest lost an acked message", Result{Scenario: "ingest", Acked: 10, StoredDelta: 9}, false},
	} {
		if err := tc.res.Intact(); (err == nil) != tc.ok {
			t.Errorf("%s: Intact() = %v", tc.name, err)
		}
	}
}

// TestScanPollAnswer holds the long-poll scanner to what decoding the same answer gives, with
// natter's own encoding of messages whose bodies try to look like keys.
func TestScanPollAnswer(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	msgs := []natter.Message{
		{Room: "r", Seq: 7, ID: "a", Author: "bench-send-1", Body: "1700000000123456789 plain", TS: ts},
		{Room: "r", Seq: 8, ID: "b", ClientID: `"seq":99`, Author: "x", Body: `"seq":12,"body":"5`, TS: ts},
		{Room: "r", Seq: 9, ID: "c", Author: "y", Body: "no digits \"body\":\"77 here", TS: ts},
		{Room: "r", Seq: 10, ID: "d", Author: "z", Body: "42", TS: ts},
	}
	answer, err := json.Marshal(map[string]any{"room": "r", "epoch": "e", "last_seq": 10, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	var want, got [][2]int64
	for _, m := range msgs {
		sent, _ := parseDigits([]byte(m.Body))
		want = append(want, [2]int64{m.Seq, sent})
	}
	highest := scanPollAnswer(answer, func(seq, sent int64) { got = append(got, [2]int64{seq, sent}) })
	if !slices.Equal(got, want) || highest != 10 {
		t.Fatalf("scanned %v (highest %d) from %s; want %v", got, highest, answer, want)
	}
	if h := scanPollAnswer([]byte(`{"room":"r","epoch":"e","last_seq":3,"messages":[]}`), func(int64, int64) { t.Fatal("delivered from an empty answer") }); h != 0 {
		t.Fatalf("highest of an empty answer = %d", h)
	}
}
