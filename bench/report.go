package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is every figure of one run. Counts are exact; rates and latencies are measured on this
// machine's clock. JSON field names are stable for scripts.
type Result struct {
	Scenario  string            `json:"scenario"`
	Transport string            `json:"transport"`
	URL       string            `json:"url"`
	Started   time.Time         `json:"started"`
	ElapsedS  float64           `json:"elapsed_s"`
	Params    map[string]string `json:"params"`
	Machine   map[string]string `json:"machine,omitempty"`

	Rooms       int `json:"rooms"`
	Subscribers int `json:"subscribers,omitempty"`
	Senders     int `json:"senders,omitempty"`

	// Connecting.
	Connections   int     `json:"connections"` // subscribed at the end of the connect phase
	ConnectS      float64 `json:"connect_s"`
	ConnectsPerS  float64 `json:"connects_per_s"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`
	PeakRSSKiB    int64   `json:"peak_rss_kib,omitempty"`

	// Sending.
	Published     int64        `json:"published"`
	Acked         int64        `json:"acked"`
	SendErrors    int64        `json:"send_errors"`
	DuplicateAcks int64        `json:"duplicate_acks"`
	PeakInFlight  int64        `json:"peak_in_flight"` // most sends of one publisher awaiting their answer at once (WebSocket)
	PublishS      float64      `json:"publish_s"`      // first send to last ack
	AckedPerS     float64      `json:"acked_per_s"`
	AckLatency    LatencyStats `json:"ack_latency"`
	StoredDelta   int64        `json:"stored_delta,omitempty"` // ingest: growth of the rooms' last_seq

	// Receiving.
	Expected   int64 `json:"expected"` // acked messages x subscribers of their room
	Deliveries int64 `json:"deliveries"`
	Unique     int64 `json:"unique"`
	Lost       int64 `json:"lost"`
	// InFlightAtStop counts, for a run cut short by --duration, acked messages a subscriber had
	// not received when it stopped and that lie above everything it had received: on their way,
	// not lost. A missing seq below a received one is always counted as lost.
	InFlightAtStop   int64 `json:"in_flight_at_stop,omitempty"`
	lostGaps         int64
	Duplicated       int64        `json:"duplicated"`
	OutOfOrder       int64        `json:"out_of_order"`
	Foreign          int64        `json:"foreign"`
	DeliveryS        float64      `json:"delivery_s"` // first send to last delivery
	DeliveriesPerS   float64      `json:"deliveries_per_s"`
	Latency          LatencyStats `json:"latency"`
	SlowDisconnects  int64        `json:"slow_disconnects"`
	OtherDisconnects int64        `json:"other_disconnects"`
	Reconnects       int64        `json:"reconnects"`
	ConnectionErrors int64        `json:"connection_errors"`
	FirstError       string       `json:"first_error,omitempty"`

	// Cost.
	ServerCPUS          float64 `json:"server_cpu_s,omitempty"` // during publishing and draining
	ServerCPUPerMillion float64 `json:"server_cpu_s_per_million,omitempty"`
	BenchCPUS           float64 `json:"bench_cpu_s"`

	// LoadAvg is /proc/loadavg at the start and the end: other work on the machine skews figures.
	LoadAvg [2]string `json:"loadavg,omitempty"`

	StoppedByCap bool             `json:"stopped_by_cap"`
	Notes        []string         `json:"notes,omitempty"`
	Timeline     []TimelineBucket `json:"timeline,omitempty"`
	AckTimeline  []TimelineBucket `json:"ack_timeline,omitempty"`
	ProcSeries   []ProcSample     `json:"server_samples,omitempty"`
}

func paramsOf(c Config) map[string]string {
	p := map[string]string{
		"transport": c.Transport, "duration": c.Duration.String(), "batch": fmt.Sprint(c.Batch),
		"users": fmt.Sprint(c.Users), "body_size": fmt.Sprint(c.BodySize),
	}
	switch c.Scenario {
	case "fanout", "rooms":
		p["subs"] = fmt.Sprint(c.Subs)
		p["messages"] = fmt.Sprint(c.Messages)
		p["rate"] = fmt.Sprint(c.Rate)
		p["window"] = fmt.Sprint(c.Window)
		p["publishers"] = fmt.Sprint(c.Pubs)
		p["drain"] = c.Drain.String()
		if c.Scenario == "rooms" {
			p["rooms"] = fmt.Sprint(c.Rooms)
		}
	case "ingest":
		p["senders"] = fmt.Sprint(c.Senders)
		p["messages"] = fmt.Sprint(c.Messages)
		p["rate"] = fmt.Sprint(c.Rate)
		p["rooms"] = fmt.Sprint(c.Rooms)
		p["window"] = fmt.Sprint(c.Window)
	case "idle":
		p["conns"] = fmt.Sprint(c.Conns)
		p["settle"] = c.Settle.String()
	}
	if c.Room != "" {
		p["room"] = c.Room
	}
	return p
}

// WriteJSON writes the result, indented, to path.
func (res *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the human summary.
func (res *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	lat := func(l LatencyStats) string {
		if l.Count == 0 {
			return "-"
		}
		return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", ms(l.P50MS), ms(l.P90MS), ms(l.P99MS), ms(l.P999MS), ms(l.MaxMS))
	}
	fmt.Fprintf(tw, "natter bench %s over %s: %s\n", res.Scenario, res.Transport, res.URL)
	var keys []string
	for _, k := range []string{"subs", "rooms", "senders", "conns", "messages", "rate", "publishers", "window", "users", "body_size", "procs"} {
		if v, ok := res.Params[k]; ok {
			keys = append(keys, k+"="+v)
		}
	}
	row("parameters", "%s", strings.Join(keys, " "))
	if res.Subscribers > 0 {
		row("connections", "%d subscribed in %.2f s (%.0f/s)", res.Connections, res.ConnectS, res.ConnectsPerS)
	}
	if res.RSSAfterKiB > 0 {
		row("server RSS", "%s before, %s after connecting: %.2f KiB per connection", kib(res.RSSBeforeKiB), kib(res.RSSAfterKiB), res.RSSPerConnKiB)
	}
	if res.Scenario != "idle" {
		row("sent", "%d published, %d acked, %d refused, in %.2f s (%s acked/s)", res.Published, res.Acked, res.SendErrors, res.PublishS, count(res.AckedPerS))
		row("ack latency", "%s", lat(res.AckLatency))
		if res.Scenario == "ingest" && res.StoredDelta > 0 {
			row("stored", "the rooms grew by %d messages", res.StoredDelta)
		}
	}
	if res.Scenario == "fanout" || res.Scenario == "rooms" {
		row("deliveries", "%d of %d expected in %.2f s: %s deliveries/s", res.Deliveries, res.Expected, res.DeliveryS, count(res.DeliveriesPerS))
		row("latency", "%s", lat(res.Latency))
		row("lost", "%d", res.Lost)
		if res.InFlightAtStop > 0 {
			row("in flight at stop", "%d (acked, not yet delivered when the --duration cap stopped the run)", res.InFlightAtStop)
		}
		row("duplicated", "%d", res.Duplicated)
		row("out of order", "%d", res.OutOfOrder)
		if res.Foreign > 0 {
			row("foreign", "%d (messages of other writers in the room)", res.Foreign)
		}
	}
	row("disconnects", "%d slow (4008), %d other, %d reconnects", res.SlowDisconnects, res.OtherDisconnects, res.Reconnects)
	if res.FirstError != "" {
		row("first error", "%s (%d in all)", res.FirstError, res.ConnectionErrors)
	}
	if res.ServerCPUS > 0 {
		per := ""
		if res.ServerCPUPerMillion > 0 {
			unit := "deliveries"
			if res.Scenario == "ingest" {
				unit = "messages"
			}
			per = fmt.Sprintf(": %.2f CPU-s per million %s", res.ServerCPUPerMillion, unit)
		}
		row("server CPU", "%.2f s%s", res.ServerCPUS, per)
	}
	if res.PeakRSSKiB > 0 {
		row("server peak RSS", "%s", kib(res.PeakRSSKiB))
	}
	row("bench CPU", "%.2f s in %.1f s", res.BenchCPUS, res.ElapsedS)
	if res.LoadAvg[0] != "" {
		row("load average", "%s at the start, %s at the end", res.LoadAvg[0], res.LoadAvg[1])
	}
	for _, n := range res.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func kib(v int64) string {
	if v >= 10*1024 {
		return fmt.Sprintf("%.1f MiB", float64(v)/1024)
	}
	return fmt.Sprintf("%d KiB", v)
}

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// startProgress prints the run's state to cfg.Progress until the returned func is called.
func (r *runner) startProgress() func() {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	every := r.cfg.ProgressEvery
	if r.cfg.ProgressTTY {
		every = time.Second
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastDeliv int64
		lastT := time.Now()
		for {
			select {
			case <-stop:
				if r.cfg.ProgressTTY {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case now := <-t.C:
				d := r.deliveries.load()
				rate := float64(d-lastDeliv) / now.Sub(lastT).Seconds()
				lastDeliv, lastT = d, now
				phase := "?"
				if p := r.phase.Load(); p != nil {
					phase = *p
				}
				line := fmt.Sprintf("[%5.1fs] %s: %d connected, %d sent, %d acked, %d delivered (%s/s), %d slow",
					now.Sub(r.started).Seconds(), phase, r.connected.Load(), r.published.Load(), r.acked.Load(), d, count(rate), r.slow.Load())
				if r.cfg.ProgressTTY {
					fmt.Fprint(w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// Intact reports, as an error, what shows the server broke its promises in this run: a message
// lost, delivered twice or out of order, or (ingest) acknowledged but missing from its room's
// log. Speed is no part of it. A room that grew by more than was acked is not an error: sends cut
// short by --duration may be stored without their ack, and a shared --room has other writers.
func (r *Result) Intact() error {
	if r.Lost > 0 || r.Duplicated > 0 || r.OutOfOrder > 0 {
		return fmt.Errorf("the log was not delivered intact: %d lost, %d duplicated, %d out of order", r.Lost, r.Duplicated, r.OutOfOrder)
	}
	if r.Scenario == "ingest" && r.StoredDelta < r.Acked {
		return fmt.Errorf("%d messages were acknowledged but the rooms grew by only %d", r.Acked, r.StoredDelta)
	}
	return nil
}
