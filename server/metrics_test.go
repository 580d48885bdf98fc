package server_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"natter/app"
)

// metricLine is one sample of the Prometheus text format.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// scrape GETs /metrics, checks the text format (every sample's metric has HELP and TYPE before it,
// every value is a number) and returns the samples by name and labels.
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	r := ts.do("GET", "/metrics", "", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	samples := map[string]float64{}
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(string(r.Raw), "\n"), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		base := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b := strings.TrimSuffix(base, suffix); b != base && typed[b] {
				base = b
			}
		}
		if !typed[base] {
			t.Fatalf("sample %q comes without a TYPE line", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[m[1]+m[2]] = v
	}
	return samples
}

// TestMetrics: /metrics counts what happens: connections by transport while they are open,
// published messages and their deliveries, sends and their latency, refusals at the limits.
func TestMetrics(t *testing.T) {
	ts := startServer(t, func(c *app.Config) {
		c.Server.Metrics = true
		c.Server.MaxUserConns = 3
		c.Server.SendRate, c.Server.SendBurst = 1, 5
	})
	alice, bob := ts.signIn("alice"), ts.signIn("bob")
	m := scrape(t, ts)
	for _, name := range []string{`natter_connections{transport="ws"}`, `natter_connections{transport="sse"}`, `natter_connections{transport="poll"}`, "natter_messages_published_total", "natter_send_duration_seconds_count"} {
		if v, ok := m[name]; !ok || v != 0 {
			t.Fatalf("%s = %v (present %v) on a new server, want 0", name, v, ok)
		}
	}
	if m[`natter_connection_limit{scope="user"}`] != 3 || m[`natter_connection_limit{scope="server"}`] <= 0 {
		t.Fatalf("connection limits %v, %v", m[`natter_connection_limit{scope="user"}`], m[`natter_connection_limit{scope="server"}`])
	}
	slow0 := m["natter_slow_disconnects_total"] // counted per process: earlier tests' servers count too
	if m["go_goroutines"] <= 0 || m["process_start_time_seconds"] <= 0 {
		t.Fatalf("runtime figures missing: %v", m)
	}

	// One connection of each transport, subscribed to the lobby.
	sub := ts.dialWS(alice)
	sub.subscribe("lobby", 0)
	ts.openSSE("/api/rooms/lobby/events", alice).waitSubscribed()
	poll := ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", alice, nil)
	parked(t, ts, 3)
	m = scrape(t, ts)
	for _, tr := range []string{"ws", "sse", "poll"} {
		if v := m[`natter_connections{transport="`+tr+`"}`]; v != 1 {
			t.Fatalf("%s connections = %v with one open", tr, v)
		}
	}
	// Alice's fourth is refused at her limit.
	checkError(t, ts.do("GET", "/api/rooms/lobby/events", alice, nil), http.StatusTooManyRequests, "rate_limited")

	// Bob sends 5 messages (his burst) and a sixth that the rate limit refuses.
	for i := range 5 {
		if r := ts.post(bob, "lobby", "m"+strconv.Itoa(i), ""); r.Status != http.StatusCreated {
			t.Fatalf("send %d: %d %s", i, r.Status, r.Raw)
		}
	}
	checkError(t, ts.post(bob, "lobby", "one too many", ""), http.StatusTooManyRequests, "rate_limited")
	<-poll // woken by the first message
	sub.expect("message")
	waitFor(t, "the poll's connection gone", func() bool { return ts.Main.Server().ConnCount() == 2 })

	m = scrape(t, ts)
	want := map[string]float64{
		`natter_connections{transport="ws"}`:               1,
		`natter_connections{transport="sse"}`:              1,
		`natter_connections{transport="poll"}`:             0,
		`natter_connections_refused_total{limit="user"}`:   1,
		`natter_connections_refused_total{limit="server"}`: 0,
		"natter_messages_published_total":                  5,
		"natter_sends_rate_limited_total":                  1,
		"natter_send_duration_seconds_count":               5,
		`natter_send_duration_seconds_bucket{le="+Inf"}`:   5,
		"natter_slow_disconnects_total":                    slow0,
	}
	for name, v := range want {
		if m[name] != v {
			t.Errorf("%s = %v, want %v", name, m[name], v)
		}
	}
	// Each message went to the WebSocket and the stream (the poll had parked on the hub's
	// notification, not a subscription).
	if d := m["natter_deliveries_total"]; d != 10 {
		t.Errorf("natter_deliveries_total = %v, want 10 (5 messages x 2 subscribers)", d)
	}
	if m["natter_send_duration_seconds_sum"] <= 0 {
		t.Errorf("send duration sum %v", m["natter_send_duration_seconds_sum"])
	}
}

// TestMetricsOff: without Config.Metrics there is no /metrics.
func TestMetricsOff(t *testing.T) {
	ts := startServer(t)
	if r := ts.do("GET", "/metrics", "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("GET /metrics with metrics off: %d", r.Status)
	}
}

// TestMetricsCountChatFeatures: /metrics counts typing notices (HTTP and WebSocket), read marks
// set, and edits and deletions by kind, and not what was refused.
func TestMetricsCountChatFeatures(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Metrics = true })
	alice, guest := ts.account("alice"), ts.signIn("gus")
	msg := ts.mustPost(alice, "lobby", "helo")
	if r := ts.do("POST", "/api/rooms/lobby/typing", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("typing: %d %s", r.Status, r.Raw)
	}
	c := ts.dialWS(guest)
	c.subscribe("lobby", 0)
	c.send(map[string]string{"type": "typing", "room": "lobby"})
	epoch := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)["epoch"].(string)
	if r := ts.do("PUT", "/api/rooms/lobby/read", alice, map[string]any{"seq": 1, "epoch": epoch}); r.Status != http.StatusNoContent {
		t.Fatalf("mark: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.do("PUT", "/api/rooms/lobby/read", alice, map[string]any{"seq": 9, "epoch": epoch}), http.StatusBadRequest, "invalid")
	for _, change := range []map[string]any{{"kind": "edit", "target": msg.Seq, "body": "hello"}, {"kind": "edit", "target": msg.Seq, "body": "hello!"}, {"kind": "delete", "target": msg.Seq}} {
		if r := ts.do("POST", "/api/rooms/lobby/messages", alice, change); r.Status != http.StatusCreated {
			t.Fatalf("%v: %d %s", change, r.Status, r.Raw)
		}
	}
	checkError(t, ts.do("POST", "/api/rooms/lobby/messages", guest, map[string]any{"kind": "delete", "target": msg.Seq}), http.StatusForbidden, "forbidden")
	waitFor(t, "both typing notices counted", func() bool { return scrape(t, ts)["natter_typing_notices_total"] == 2 })
	m := scrape(t, ts)
	for name, want := range map[string]float64{
		"natter_read_marks_total":                     1,
		`natter_message_changes_total{kind="edit"}`:   2,
		`natter_message_changes_total{kind="delete"}`: 1,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}
