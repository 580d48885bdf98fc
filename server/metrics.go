package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"natter"
	"natter/hub"
)

// GET /metrics answers in the Prometheus text format (version 0.0.4): what an operator watches
// to see a node's load and health. Every figure is counted as it happens, with atomics, so a
// scrape only reads them and nothing in the hot paths waits for it.

// serverMetrics are the server's own counters.
type serverMetrics struct {
	conns       [numTransports]atomic.Int64 // open long-lived connections, by transport
	refused     [3]atomic.Int64             // connections refused at MaxConns (0), MaxUserConns (1) and MaxAddrConns (2)
	rateLimited atomic.Int64                // sends refused by the send rate limit
	sendLatency histogram                   // a send's hand-off to the store to the store's answer
	changes     [4]atomic.Int64             // edits (0), deletions (1), reactions put on or taken off (2), pins and unpins (3) stored
	readMarks   atomic.Int64                // read marks set through the API
	typing      atomic.Int64                // typing notices taken (each may be passed on or not)
	bans        atomic.Int64                // bans made by moderators
	suspensions atomic.Int64                // accounts suspended by admins
	searches    histogram                   // how long each search took
}

// The transports, as the metrics name them.
const (
	transportWS = iota
	transportSSE
	transportPoll
	numTransports
)

var transportNames = [numTransports]string{"ws", "sse", "poll"}

// transportOf returns c's transport.
func transportOf(c liveConn) int {
	switch c.(type) {
	case *wsConn:
		return transportWS
	case *sseConn:
		return transportSSE
	default:
		return transportPoll
	}
}

// histogram counts durations in fixed buckets, as a Prometheus histogram.
type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Int64 // the last is +Inf
	sumNS  atomic.Int64
}

// latencyBuckets are the histogram's upper bounds in seconds: from well under one fsync to
// far past any acceptable wait.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

func (h *histogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && sec > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// metricsWriter writes the text format.
type metricsWriter struct{ w *bufio.Writer }

func (m metricsWriter) head(name, typ, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (m metricsWriter) value(name, labels string, v float64) {
	if labels != "" {
		labels = "{" + labels + "}"
	}
	text := strconv.FormatFloat(v, 'g', -1, 64)
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		text = strconv.FormatInt(int64(v), 10) // counts and bytes read better whole
	}
	m.w.WriteString(name + labels + " " + text + "\n")
}

func (m metricsWriter) one(name, typ, help string, v float64) {
	m.head(name, typ, help)
	m.value(name, "", v)
}

func (m metricsWriter) histogram(name, help string, h *histogram) {
	m.head(name, "histogram", help)
	var cum int64
	for i, le := range latencyBuckets {
		cum += h.counts[i].Load()
		m.value(name+"_bucket", `le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"`, float64(cum))
	}
	cum += h.counts[len(latencyBuckets)].Load()
	m.value(name+"_bucket", `le="+Inf"`, float64(cum))
	m.value(name+"_sum", "", float64(h.sumNS.Load())/1e9)
	m.value(name+"_count", "", float64(cum))
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	s.writeMetrics(bw)
	bw.Flush()
}

func (s *Server) writeMetrics(out *bufio.Writer) {
	m := metricsWriter{out}
	sm := &s.metrics

	m.head("natter_connections", "gauge", "Open WebSockets, SSE streams and parked long-polls, by transport.")
	for i, name := range transportNames {
		m.value("natter_connections", `transport="`+name+`"`, float64(sm.conns[i].Load()))
	}
	total, perUser, perAddr := s.ConnLimits()
	m.head("natter_connection_limit", "gauge", "The most long-lived connections allowed in all (--max-conns), per user (--max-user-conns) and per client address (--max-addr-conns); -1: no limit.")
	m.value("natter_connection_limit", `scope="server"`, float64(max(total, -1)))
	m.value("natter_connection_limit", `scope="user"`, float64(max(perUser, -1)))
	m.value("natter_connection_limit", `scope="address"`, float64(max(perAddr, -1)))
	m.head("natter_connections_refused_total", "counter", "Long-lived connections refused at a connection limit.")
	m.value("natter_connections_refused_total", `limit="server"`, float64(sm.refused[0].Load()))
	m.value("natter_connections_refused_total", `limit="user"`, float64(sm.refused[1].Load()))
	m.value("natter_connections_refused_total", `limit="address"`, float64(sm.refused[2].Load()))
	m.one("natter_slow_disconnects_total", "counter", "Connections closed for not keeping up with their rooms (WebSocket close 4008; they resume without loss).", float64(hub.SlowCloses()))

	hs := s.hub.Stats()
	m.one("natter_messages_published_total", "counter", "Committed messages fanned out to this node's subscribers.", float64(hs.Published))
	m.one("natter_deliveries_total", "counter", "Message frames queued for subscribers (one per subscriber per message).", float64(hs.Deliveries))
	m.one("natter_sends_rate_limited_total", "counter", "Sends refused by the per-user send rate limit.", float64(sm.rateLimited.Load()))
	m.histogram("natter_send_duration_seconds", "From a send's hand-off to the store to its answer: the wait for the committer, the commit and, with --sync FULL, the WAL's fsync.", &sm.sendLatency)

	m.head("natter_message_changes_total", "counter", "Edits, deletions and reactions (on or off) stored, by kind.")
	m.value("natter_message_changes_total", `kind="edit"`, float64(sm.changes[0].Load()))
	m.value("natter_message_changes_total", `kind="delete"`, float64(sm.changes[1].Load()))
	m.value("natter_message_changes_total", `kind="reaction"`, float64(sm.changes[2].Load()))
	m.value("natter_message_changes_total", `kind="pin"`, float64(sm.changes[3].Load()))
	m.one("natter_read_marks_total", "counter", "Read marks set by accounts (PUT /api/rooms/{room}/read).", float64(sm.readMarks.Load()))
	m.one("natter_typing_notices_total", "counter", "Typing notices received (WebSocket typing frames and POST /api/rooms/{room}/typing).", float64(sm.typing.Load()))
	m.one("natter_bans_total", "counter", "Users banned from posting in a room by its moderators (PUT /api/rooms/{room}/bans/{user}).", float64(sm.bans.Load()))
	m.one("natter_suspensions_total", "counter", "Accounts suspended by admins (PUT /api/users/{name}/suspension).", float64(sm.suspensions.Load()))
	m.histogram("natter_search_duration_seconds", "How long each room search took (GET /api/rooms/{room}/search), reading up to 10,000 log entries.", &sm.searches)

	if r, ok := s.store.(natter.MetricsReporter); ok {
		for _, x := range r.Metrics() {
			m.one(x.Name, x.Type, x.Help, x.Value)
		}
	}

	m.one("go_goroutines", "gauge", "Goroutines that currently exist.", float64(runtime.NumGoroutine()))
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(samples)
	for i, d := range []struct{ name, typ, help string }{
		{"go_memory_mapped_bytes", "gauge", "Memory the Go runtime has mapped (runtime/metrics /memory/classes/total:bytes)."},
		{"go_heap_objects_bytes", "gauge", "Memory in live and not yet swept heap objects."},
		{"go_gc_cycles_total", "counter", "Completed garbage collection cycles."},
	} {
		if v, ok := sampleValue(samples[i]); ok {
			m.one(d.name, d.typ, d.help, v)
		}
	}
	if rss, ok := residentBytes(); ok {
		m.one("process_resident_memory_bytes", "gauge", "Resident memory of the natter process.", rss)
	}
	m.one("process_start_time_seconds", "gauge", "When natter started, in seconds since the Unix epoch.", float64(s.started.UnixNano())/1e9)
}

func sampleValue(s metrics.Sample) (float64, bool) {
	switch s.Value.Kind() {
	case metrics.KindUint64:
		return float64(s.Value.Uint64()), true
	case metrics.KindFloat64:
		return s.Value.Float64(), true
	}
	return 0, false
}

// residentBytes reads the process's resident memory from /proc (Linux); elsewhere it reports false.
func residentBytes() (float64, bool) {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseFloat(fields[1], 64)
	if err != nil || math.IsNaN(pages) {
		return 0, false
	}
	return pages * float64(os.Getpagesize()), true
}
