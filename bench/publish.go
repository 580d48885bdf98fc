package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"natter/ws"
)

// publisher sends count messages to one room over one connection and records their acks. Every
// body starts with the unix nanoseconds of its sending, which subscribers turn into latency.
type publisher struct {
	idx    int
	room   *roomRun
	token  string
	count  int
	rate   float64 // messages per second; 0 = as fast as the window allows
	window int     // sends in flight (WebSocket only)
	prefix string  // client_id prefix, unique per run and publisher

	sentAt []atomic.Int64 // by message index: unix nanoseconds, 0 once answered
	done   atomic.Int64   // acked or refused
	next   atomic.Int64   // at --rate 0: the next message index to send
	sent   atomic.Int64   // messages written
}

func (r *runner) newPublisher(idx int, room *roomRun, token string, count int, rate float64) *publisher {
	return &publisher{
		idx: idx, room: room, token: token, count: count, rate: rate, window: r.cfg.Window,
		prefix: fmt.Sprintf("b%s-%d-", r.runID, idx),
		sentAt: make([]atomic.Int64, count),
	}
}

// body returns a message body: the send time, then padding up to the configured size.
func (r *runner) body(dst []byte, now int64) []byte {
	dst = strconv.AppendInt(dst, now, 10)
	for len(dst) < r.cfg.BodySize {
		dst = append(dst, " natter bench ........................................"...)
	}
	if len(dst) > r.cfg.BodySize && r.cfg.BodySize >= 19 {
		dst = dst[:r.cfg.BodySize]
	}
	return dst
}

// pace waits until message i is due at the publisher's rate.
func (p *publisher) pace(ctx context.Context, start time.Time, i int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	due := start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}

// answered records the server's answer to message i: its seq, or a refusal. It reports false
// for a second answer to the same send (or an unknown index), which frees no slot.
func (p *publisher) answered(r *runner, i int, seq int64, errMsg string) bool {
	if i < 0 || i >= p.count {
		return false
	}
	sent := p.sentAt[i].Swap(0)
	if sent == 0 {
		return false // a second answer to the same send
	}
	if errMsg != "" {
		r.sendErrors.Add(1)
		r.noteError(fmt.Errorf("send refused: %s", errMsg))
	} else {
		r.acked.Add(1)
		p.room.acks.add(seq)
		r.ackLat.record(p.idx, sent, time.Now().UnixNano())
	}
	p.done.Add(1)
	return true
}

// runWS sends over one WebSocket, keeping up to window sends in flight. It returns when every
// send was answered, the connection failed, or ctx ended.
func (p *publisher) runWS(ctx context.Context, r *runner) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	wc, resp, err := r.dialer.Dial(dctx, r.wsURL, http.Header{"Authorization": {"Bearer " + p.token}})
	cancel()
	if err != nil {
		return fmt.Errorf("publisher: %w", describeDialError(err, resp))
	}
	defer wc.Close()
	stop := context.AfterFunc(ctx, func() { wc.Close() })
	defer stop()

	slots := make(chan struct{}, max(p.window, 1))
	allDone := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		var f struct {
			Type     string `json:"type"`
			ClientID string `json:"client_id"`
			Seq      int64  `json:"seq"`
			Code     string `json:"code"`
			Message  string `json:"message"`
			Ref      string `json:"ref"`
		}
		finished := false // every send answered: only pings still need an answer
		var rbuf, rbody []byte
		err := newFrameReader().run(wc.NetConn(), func(op ws.Opcode, msg []byte) error {
			switch op {
			case ws.OpText:
			case ws.OpPing:
				wc.WriteMessage(ws.OpPong, msg)
				return nil
			case ws.OpClose:
				return &ws.CloseError{Code: closeCode(msg)}
			default:
				return nil
			}
			if finished {
				return nil
			}
			i, seq, ok := -1, int64(0), false
			var errMsg string
			if id, s, isAck := parseAck(msg); isAck {
				i, ok = p.indexBytes(id)
				seq = s
			} else {
				f.Type, f.ClientID, f.Ref = "", "", ""
				if json.Unmarshal(msg, &f) != nil {
					return nil
				}
				var id string
				switch f.Type {
				case "ack":
					id = f.ClientID
				case "error":
					id, errMsg = f.Ref, f.Code+": "+f.Message
				default:
					return nil
				}
				i, ok = p.index(id)
				seq = f.Seq
			}
			if !ok {
				if errMsg != "" {
					r.noteError(fmt.Errorf("publisher: %s", errMsg))
				}
				return nil
			}
			if !p.answered(r, i, seq, errMsg) {
				return nil // a repeated answer frees no slot
			}
			if p.rate <= 0 {
				// The answer frees a slot: send the next message from here, rather than wake
				// a writer goroutine for it (two goroutine switches per message at one in flight).
				if next := int(p.next.Add(1)) - 1; next < p.count {
					if err := p.send(r, wc, next, &rbuf, &rbody); err != nil {
						return err
					}
				}
			} else {
				select {
				case <-slots:
				default:
				}
			}
			if p.done.Load() == int64(p.count) {
				close(allDone)
				finished = true
			}
			return nil
		})
		if !finished {
			readErr <- err
		}
	}()

	start := time.Now()
	buf := make([]byte, 0, 256+r.cfg.BodySize)
	var body []byte
	if p.rate <= 0 {
		// As fast as acknowledged: the first window goes from here, every later message from
		// the reader as an answer frees its slot.
		for range min(max(p.window, 1), p.count) {
			next := int(p.next.Add(1)) - 1
			if next >= p.count {
				break // answers came meanwhile, and the reader has sent the rest
			}
			if err := p.send(r, wc, next, &buf, &body); err != nil {
				return err
			}
		}
	}
	for i := 0; p.rate > 0 && i < p.count; i++ {
		if err := p.pace(ctx, start, i); err != nil {
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("publisher connection: %w", err)
		}
		if err := p.send(r, wc, i, &buf, &body); err != nil {
			return err
		}
	}
	if p.count == 0 {
		return nil
	}
	// Wait for the last answers, but not for ever: a server that drops an ack would otherwise
	// hold the run until its cap.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := p.done.Load(), time.Now()
	for {
		select {
		case <-allDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("publisher connection: %w", err)
		case now := <-tick.C:
			if d := p.done.Load(); d != last {
				last, lastChange = d, now
			} else if now.Sub(lastChange) > r.cfg.Drain {
				return fmt.Errorf("publisher: %d of %d sends were never answered (no ack or error within %v)", int64(p.count)-d, p.count, r.cfg.Drain)
			}
		}
	}
}

// send writes message i, stamped with the time of its sending.
func (p *publisher) send(r *runner, wc *ws.Conn, i int, buf, body *[]byte) error {
	now := time.Now().UnixNano()
	p.sentAt[i].Store(now)
	*body = r.body((*body)[:0], now)
	b := append((*buf)[:0], `{"type":"send","room":"`...)
	b = append(b, p.room.name...)
	b = append(b, `","client_id":"`...)
	b = append(b, p.prefix...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","body":"`...)
	b = append(b, *body...)
	b = append(b, `"}`...)
	*buf = b
	if err := wc.WriteMessage(ws.OpText, b); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	r.published.Add(1)
	// done is read after the send, so an answer racing in makes this an undercount, never an
	// overcount: a peak above the window is a real one.
	if n := p.sent.Add(1) - p.done.Load(); n > r.peakInFlight.Load() {
		for {
			old := r.peakInFlight.Load()
			if n <= old || r.peakInFlight.CompareAndSwap(old, n) {
				break
			}
		}
	}
	return nil
}

// indexBytes is index for a client_id still in the frame's bytes, without allocating.
func (p *publisher) indexBytes(clientID []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(clientID, []byte(p.prefix))
	if !ok || len(rest) == 0 || len(rest) > 9 {
		return 0, false
	}
	i := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, true
}

// parseAck reads the client_id and seq of an ack frame in the form natter writes it
// ({"type":"ack","client_id":"...","seq":N,...}) without a JSON decoder, which cost the load
// generator more than its reads. Anything else (an error, a client_id with escapes) is not
// parsed here: ok is false and the caller decodes it as JSON.
func parseAck(p []byte) (clientID []byte, seq int64, ok bool) {
	rest, ok := bytes.CutPrefix(p, ackPrefix)
	if !ok {
		return nil, 0, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, 0, false
	}
	clientID, rest = rest[:end], rest[end+1:]
	if rest, ok = bytes.CutPrefix(rest, ackSeq); !ok {
		return nil, 0, false
	}
	n := 0
	for n < len(rest) && n < 18 && rest[n] >= '0' && rest[n] <= '9' {
		seq = seq*10 + int64(rest[n]-'0')
		n++
	}
	if n == 0 || n == len(rest) || (rest[n] != ',' && rest[n] != '}') {
		return nil, 0, false
	}
	return clientID, seq, true
}

var (
	ackPrefix = []byte(`{"type":"ack","client_id":"`)
	ackSeq    = []byte(`,"seq":`)
)

// index parses the message index out of a client_id of this publisher.
func (p *publisher) index(clientID string) (int, bool) {
	rest, ok := strings.CutPrefix(clientID, p.prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// runHTTP sends with POST /api/rooms/{room}/messages, one request at a time.
func (p *publisher) runHTTP(ctx context.Context, r *runner) error {
	path := r.base + "/api/rooms/" + url.PathEscape(p.room.name) + "/messages"
	start := time.Now()
	var body []byte
	for i := 0; i < p.count; i++ {
		if err := p.pace(ctx, start, i); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		p.sentAt[i].Store(now)
		body = r.body(body[:0], now)
		in, _ := json.Marshal(map[string]string{"body": string(body), "client_id": p.prefix + strconv.Itoa(i)})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(in))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.token)
		r.published.Add(1)
		resp, err := r.pollHTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.answered(r, i, 0, err.Error())
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			json.Unmarshal(data, &e)
			p.answered(r, i, 0, fmt.Sprintf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message))
			continue
		}
		var out struct {
			Message struct {
				Seq int64 `json:"seq"`
			} `json:"message"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			p.answered(r, i, 0, "bad JSON answer: "+err.Error())
			continue
		}
		p.answered(r, i, out.Message.Seq, "")
	}
	return nil
}
