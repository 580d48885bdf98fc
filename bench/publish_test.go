package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter/ws"
)

// TestRepeatedAnswersFreeNoSlot: against a server that answers every send twice (a fault natter
// itself can't be made to show), a publisher at --rate 0 still keeps at most --window sends
// unanswered and sends each message once: only a first answer frees a slot.
func TestRepeatedAnswersFreeNoSlot(t *testing.T) {
	runAckServer(t, 300, 4, 2)
}

// TestAnswersDuringTheFirstWindow: at --rate 0 with a window larger than the whole run, answers
// that come while the first window is still being sent make the reader send too; between them
// they send every message once, and nothing past the last (that panicked once, in CI).
func TestAnswersDuringTheFirstWindow(t *testing.T) {
	for range 20 {
		runAckServer(t, 30, 64, 1)
	}
}

// runAckServer runs one WebSocket publisher of count messages with window in flight against a
// server that answers each send with copies identical acks at once, and checks that every
// message was sent once and the window held.
func runAckServer(t *testing.T, count, window, copies int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, err := ws.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		rd := ws.NewReader(ws.SocketReader(conn), true, 1<<20)
		for seq := int64(1); ; seq++ {
			op, p, err := rd.ReadMessage()
			if err != nil {
				return
			}
			if op != ws.OpText {
				continue
			}
			var f struct {
				ClientID string `json:"client_id"`
			}
			json.Unmarshal(p, &f)
			mu.Lock()
			seen[f.ClientID]++
			mu.Unlock()
			ack := ws.AppendFrame(nil, ws.OpText, fmt.Appendf(nil, `{"type":"ack","client_id":%q,"seq":%d}`, f.ClientID, seq))
			if _, err := conn.Write(bytes.Repeat(ack, copies)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	r := &runner{
		cfg:    Config{BodySize: 64, Drain: 5 * time.Second},
		wsURL:  "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		ackLat: newRecorder(100 * time.Millisecond),
	}
	r.ackLat.start(time.Now())
	p := &publisher{room: &roomRun{name: "lobby", acks: newAckLog(0, int64(count))}, count: count, window: window, prefix: "t-", sentAt: make([]atomic.Int64, count)}
	if err := p.runWS(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if got := r.published.Load(); got != int64(count) {
		t.Errorf("published %d, want %d", got, count)
	}
	if peak := r.peakInFlight.Load(); peak > int64(window) {
		t.Errorf("peak sends in flight %d, over the window of %d", peak, window)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	if len(seen) != count {
		t.Errorf("%d distinct messages sent, want %d", len(seen), count)
	}
}
