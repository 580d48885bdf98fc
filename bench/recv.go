package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter/ws"
)

// subscriber is one receiving connection of a room, on any transport. Its goroutine connects,
// subscribes, reads, and reconnects (resuming with after) until the run stops it.
type subscriber struct {
	idx   int
	node  *endpoint // the server it connects to
	room  *roomRun
	token string
	t     tracker

	ready     chan struct{} // closed once subscribed the first time, or on a failed first connect
	readyOnce sync.Once
	err       error // why the first connect failed; read after ready is closed
}

func (s *subscriber) markReady(err error) {
	s.readyOnce.Do(func() {
		s.err = err
		close(s.ready)
	})
}

// run keeps the subscriber connected until ctx ends.
func (s *subscriber) run(ctx context.Context, r *runner) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		after := s.t.resume()
		var err error
		switch r.cfg.Transport {
		case "sse":
			err = s.runSSE(ctx, r, after)
		case "poll":
			err = s.runPoll(ctx, r, after)
		default:
			err = s.runWS(ctx, r, after)
		}
		if ctx.Err() != nil {
			s.markReady(ctx.Err())
			return
		}
		var ce *ws.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == ws.CloseSlow:
			r.slow.Add(1)
			backoff = 50 * time.Millisecond
		default:
			r.disconnects.Add(1)
			r.noteError(err)
		}
		select {
		case <-s.ready:
		default:
			// Not yet subscribed: a few retries ride out a full accept queue; more mean the
			// server refuses us, and the run stops with that error.
			if attempt >= 3 {
				s.markReady(err)
				return
			}
		}
		r.reconnects.Add(1)
		select {
		case <-ctx.Done():
			s.markReady(ctx.Err())
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// deliver accounts for one received message.
func (s *subscriber) deliver(r *runner, seq, sent int64) {
	inWindow := seq > s.t.base && seq <= s.t.base+s.t.span
	fresh := s.t.add(seq)
	if inWindow {
		r.deliveries.add(s.idx, 1)
	}
	if fresh {
		r.unique.add(s.idx, 1)
		if sent > 0 {
			r.lat.record(s.idx, sent, time.Now().UnixNano())
		}
	}
}

// runWS dials, subscribes with after and reads frames until the connection ends.
func (s *subscriber) runWS(ctx context.Context, r *runner, after int64) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	hdr := http.Header{"Authorization": {"Bearer " + s.token}}
	wc, resp, err := r.dialer.Dial(dctx, s.node.wsURL, hdr)
	cancel()
	if err != nil {
		return describeDialError(err, resp)
	}
	defer wc.Close()
	stop := context.AfterFunc(ctx, func() { wc.Close() })
	defer stop()

	sub := []byte(`{"type":"subscribe","room":"` + s.room.name + `","after":` + strconv.FormatInt(after, 10) + `}`)
	if err := wc.WriteMessage(ws.OpText, sub); err != nil {
		return err
	}
	connected := false
	defer func() {
		if connected {
			r.connected.Add(-1)
		}
	}()
	// Control frames go out through wc until the socket is handed to a read loop, then by hand.
	reply := func(op ws.Opcode, p []byte) error {
		if op == ws.OpClose {
			return wc.WriteClose(closeCode(p), "")
		}
		return wc.WriteMessage(op, p)
	}
	fr := newFrameReader()
	handle := func(op ws.Opcode, p []byte) error {
		switch op {
		case ws.OpText:
			switch {
			case bytes.HasPrefix(p, prefixMessage):
				if seq, sent, ok := parseMessage(p); ok {
					s.deliver(r, seq, sent)
				}
			case bytes.HasPrefix(p, prefixSubscribed):
				if !connected {
					connected = true
					r.connected.Add(1)
					s.markReady(nil)
					if len(r.loops) > 0 {
						return errHandOff
					}
				}
			case bytes.HasPrefix(p, prefixError):
				if !connected {
					var e struct{ Code, Message string }
					json.Unmarshal(p, &e)
					return fmt.Errorf("subscribe to %q refused: %s: %s", s.room.name, e.Code, e.Message)
				}
				r.frameErrors.Add(1)
			}
		case ws.OpPing:
			reply(ws.OpPong, p)
		case ws.OpClose:
			code := closeCode(p)
			reply(ws.OpClose, ws.ClosePayload(code, ""))
			return &ws.CloseError{Code: code}
		}
		return nil
	}
	err = fr.run(wc.NetConn(), handle)
	if err != errHandOff {
		return err
	}
	// Subscribed: from now on the loop reads the socket, and this goroutine waits for its end.
	fd, pending, err := detach(wc.NetConn())
	if err != nil {
		return fmt.Errorf("hand the socket to the read loop: %w", err)
	}
	var key [4]byte
	rand.Read(key[:])
	reply = func(op ws.Opcode, p []byte) error { return writeFrame(fd, ws.AppendMaskedFrame(nil, op, p, key)) }
	fr.fn = handle
	pc := &pollConn{fd: fd, fr: fr, ended: make(chan error, 1)}
	// First the frames that came with the subscribed one, then any bytes read ahead.
	for err := fr.got(0); ; {
		if err != nil {
			closeFD(fd)
			return err
		}
		if len(pending) == 0 {
			break
		}
		n := copy(fr.space(), pending)
		pending = pending[n:]
		err = fr.got(n)
	}
	if err := r.loops[s.idx%len(r.loops)].add(pc); err != nil {
		closeFD(fd)
		return err
	}
	defer context.AfterFunc(ctx, pc.stop)()
	return <-pc.ended
}

// errHandOff ends a subscriber's first reads once it has subscribed, so that a read loop takes
// over.
var errHandOff = errors.New("hand the socket to the read loop")

func describeDialError(err error, resp *http.Response) error {
	if resp != nil && resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if len(body) > 0 {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(body)))
		}
	}
	return err
}

// dialHTTP connects to the server for requests written by hand. The connection closes when ctx
// ends or when the caller calls done, whichever comes first.
func (r *runner) dialHTTP(ctx context.Context, node *endpoint) (conn net.Conn, done func(), err error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err = d.DialContext(dctx, "tcp", node.hostPort)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

// runSSE opens the room's event stream after `after` and reads events until it ends. The request
// is written by hand so that a stream costs one connection, one goroutine and one buffer.
func (s *subscriber) runSSE(ctx context.Context, r *runner, after int64) error {
	conn, done, err := r.dialHTTP(ctx, s.node)
	if err != nil {
		return err
	}
	defer done()

	req := "GET /api/rooms/" + url.PathEscape(s.room.name) + "/events?after=" + strconv.FormatInt(after, 10) + " HTTP/1.1\r\n" +
		"Host: " + s.node.host + "\r\nAuthorization: Bearer " + s.token + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, frameBufSize)
	status, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		body, _ := io.ReadAll(io.LimitReader(br, 2048))
		_, rest, _ := bytes.Cut(body, []byte("\r\n\r\n"))
		return fmt.Errorf("event stream refused: %s %s", bytes.TrimSpace(status), bytes.TrimSpace(rest))
	}
	for { // headers
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("event stream headers: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}

	connected := false
	defer func() {
		if connected {
			r.connected.Add(-1)
		}
	}()
	var event []byte
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			event = event[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			event = append(event[:0], line[len("event: "):]...)
		case bytes.HasPrefix(line, []byte("data: ")):
			data := line[len("data: "):]
			switch string(event) {
			case "message":
				if seq, sent, ok := parseMessage(data); ok {
					s.deliver(r, seq, sent)
				}
			case "subscribed":
				if !connected {
					connected = true
					r.connected.Add(1)
					s.markReady(nil)
				}
			}
		}
	}
}

// runPoll long-polls the room from `after` until ctx ends or a request fails. Like the SSE
// subscriber it writes its requests by hand, on one kept-alive connection, and it scans each
// answer for seqs and send times instead of decoding it: a net/http client and a JSON decoder
// per answer were most of the load generator's CPU in a long-poll fan-out.
func (s *subscriber) runPoll(ctx context.Context, r *runner, after int64) error {
	conn, done, err := r.dialHTTP(ctx, s.node)
	if err != nil {
		return err
	}
	defer done()

	wait := strconv.FormatFloat(r.cfg.PollWait.Seconds(), 'f', -1, 64)
	head := "GET /api/rooms/" + url.PathEscape(s.room.name) + "/messages?limit=1000&wait=" + wait + "&after="
	tail := " HTTP/1.1\r\nHost: " + s.node.host + "\r\nAuthorization: Bearer " + s.token + "\r\n\r\n"
	r.connected.Add(1)
	defer r.connected.Add(-1)
	s.markReady(nil) // a long-poll has no handshake: it counts as subscribed once issued
	br := bufio.NewReaderSize(ws.SocketReader(conn), frameBufSize)
	var req, body []byte
	for {
		req = append(strconv.AppendInt(append(req[:0], head...), after, 10), tail...)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("long-poll answer: %w", err)
		}
		body, err = readAllInto(body[:0], resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("long-poll answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("long-poll answered %s: %s", resp.Status, bytes.TrimSpace(body))
		}
		after = max(after, scanPollAnswer(body, func(seq, sent int64) { s.deliver(r, seq, sent) }))
		if resp.Close {
			return errors.New("long-poll connection closed by the server")
		}
	}
}

// readAllInto appends everything rd yields to b.
func readAllInto(b []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// keyMessages starts the messages array of a long-poll answer.
var keyMessages = []byte(`"messages":[`)

// scanPollAnswer calls deliver for every message of a long-poll answer, in order, and returns the
// highest seq (0 if none). Each message object has its "seq" before its "body", and neither key
// can appear inside a JSON string unescaped (a quote there is \").
func scanPollAnswer(p []byte, deliver func(seq, sent int64)) int64 {
	i := bytes.Index(p, keyMessages)
	if i < 0 {
		return 0
	}
	p = p[i+len(keyMessages):]
	var highest int64
	for {
		i := bytes.Index(p, keySeq)
		if i < 0 {
			return highest
		}
		p = p[i+len(keySeq):]
		seq, n := parseDigits(p)
		if n == 0 {
			continue
		}
		p = p[n:]
		var sent int64
		if j := bytes.Index(p, keyBody); j >= 0 {
			// Only this message's body: the next message's "seq" comes after it.
			if k := bytes.Index(p, keySeq); k < 0 || j < k {
				sent, _ = parseDigits(p[j+len(keyBody):])
			}
		}
		deliver(seq, sent)
		highest = max(highest, seq)
	}
}
