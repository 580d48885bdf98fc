package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"natter"
)

// Transport names one of the contract's three ways to receive a room's messages.
type Transport string

// The transports Subscribe can use.
const (
	TransportWS   Transport = "ws"   // WebSocket: subscribe frame, then message frames
	TransportSSE  Transport = "sse"  // Server-Sent Events, resumed with Last-Event-ID
	TransportPoll Transport = "poll" // long-polling GET .../messages?after=S&wait=D
)

// pollWait is how long each long-poll asks the server to hold the request: well below the
// contract's 60 s maximum and typical proxy timeouts.
const pollWait = 30 * time.Second

// fillPage is how many messages one gap-filling read asks for: the contract's maximum page.
const fillPage = natter.DefaultMaxPageSize

// errEpochChanged ends a session whose room log was replaced; Follow then starts over at once.
var errEpochChanged = errors.New("natter client: the room's epoch changed")

// Subscription describes what Follow delivers and to whom.
type Subscription struct {
	Room string
	// After: deliver the messages with seq > After. A negative After starts at the end of the log
	// as it is when Follow starts (only new messages).
	After int64
	// Epoch is the epoch After belongs to, if known. When the server's epoch differs, the log was
	// reset: OnEpoch is called and delivery restarts from the new log's first message. With ""
	// the first epoch seen is taken as After's.
	Epoch string
	// Transport defaults to TransportWS.
	Transport Transport
	// OnMessage receives each message once, in seq order, with no gap, on Follow's goroutine. It
	// is required. A slow OnMessage may get the connection closed as slow; Follow then
	// reconnects and resumes, so nothing is lost.
	OnMessage func(natter.Message)
	// OnEpoch, if set, is told when the epoch becomes known (old is "") or changes (delivery
	// then restarts at seq 1 of the new log, so seqs already delivered come again, as new messages).
	OnEpoch func(old, new string)
	// OnError, if set, is told why each connection ended or attempt failed, before Follow waits
	// and reconnects. It is for logs: Follow handles the error itself.
	OnError func(err error)
}

// Subscribe delivers room's messages with seq > after to fn, in order, exactly once, over the
// chosen transport, until ctx ends; it is Follow with only those fields set. See Follow.
func (c *Client) Subscribe(ctx context.Context, room string, after int64, tr Transport, fn func(natter.Message)) error {
	return c.Follow(ctx, Subscription{Room: room, After: after, Transport: tr, OnMessage: fn})
}

// Follow delivers a room's messages as s describes until ctx ends, and then returns ctx's error.
//
// After any disconnect (a network failure, a server restart, a close as too slow, a stream that
// stays silent past the idle timeout, a refusal at the server's connection limits) it reconnects
// with exponential backoff, waiting at least as long as a refusal's Retry-After asks, and resumes
// after the last seq it delivered. Whatever the server sends, deliveries stay gap-free and
// duplicate-free: messages at or below the last delivered seq are dropped, and when a message
// skips ahead the missing ones are read over HTTP first.
//
// Follow gives up only on errors that retrying can't fix, which it returns as *natter.Error:
// EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND (no such room) and EINVALID.
func (c *Client) Follow(ctx context.Context, s Subscription) error {
	if s.OnMessage == nil {
		return natter.Errorf(natter.EINVALID, "Subscription.OnMessage is required")
	}
	if s.Transport == "" {
		s.Transport = TransportWS
	}
	f := &follower{c: c, s: s, last: s.After, epoch: s.Epoch}
	var session func(context.Context) error
	switch s.Transport {
	case TransportWS:
		session = f.runWS
	case TransportSSE:
		session = f.runSSE
	case TransportPoll:
		session = f.runPoll
	default:
		return natter.Errorf(natter.EINVALID, "unknown transport %q: use ws, sse or poll", s.Transport)
	}
	if f.last < 0 {
		f.last = -1 // resolved at the first session's start
	}

	b := c.newBackoff()
	for {
		f.delivered = false
		start := time.Now()
		err := f.begin(ctx)
		if err == nil {
			err = session(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errEpochChanged) {
			b.reset()
			continue
		}
		if permanent(err) {
			return err
		}
		if s.OnError != nil {
			s.OnError(err)
		}
		// A session that delivered, or lasted, was healthy: come back quickly. One that failed at
		// once backs off further, so a broken server isn't hammered.
		if f.delivered || time.Since(start) > c.maxBackoff {
			b.reset()
		}
		// A refusal that says when to try again (the server's connection limits) is taken at
		// its word.
		if err := sleep(ctx, max(b.next(), RetryAfter(err))); err != nil {
			return err
		}
	}
}

// permanent reports whether err is a refusal that reconnecting would only repeat.
func permanent(err error) bool {
	var ne *natter.Error
	if !errors.As(err, &ne) {
		return false
	}
	switch ne.Code {
	case natter.EUNAUTHORIZED, natter.EFORBIDDEN, natter.ENOTFOUND, natter.EINVALID:
		return true
	}
	return false
}

// follower is the state of one Follow: the cursor that makes delivery exactly-once.
type follower struct {
	c         *Client
	s         Subscription
	last      int64  // the last seq delivered; -1 until the end of the log is known
	epoch     string // the epoch last belongs to; "" until known
	delivered bool   // the current session delivered at least one message
}

// begin resolves a start at the end of the log into a seq, once.
func (f *follower) begin(ctx context.Context) error {
	if f.last >= 0 {
		return nil
	}
	page, err := f.c.Messages(ctx, f.s.Room, Query{After: Newest, Limit: 1})
	if err != nil {
		return err
	}
	if err := f.checkEpoch(page.Epoch); err != nil {
		return err
	}
	if f.last < 0 {
		f.last = page.LastSeq
	}
	return nil
}

// checkEpoch compares the epoch the server reports with the cursor's. A change resets the cursor
// and returns errEpochChanged, so that the session starts over from the new log's beginning.
func (f *follower) checkEpoch(epoch string) error {
	if epoch == "" || epoch == f.epoch {
		return nil
	}
	old := f.epoch
	f.epoch = epoch
	if f.s.OnEpoch != nil {
		f.s.OnEpoch(old, epoch)
	}
	if old == "" {
		return nil
	}
	f.last = 0
	return errEpochChanged
}

// deliver hands m to OnMessage if it is the next message: older ones are dropped and a gap
// before m is filled over HTTP first.
func (f *follower) deliver(ctx context.Context, m natter.Message) error {
	if m.Room != "" && m.Room != f.s.Room {
		return nil
	}
	if m.Seq <= f.last {
		return nil
	}
	if m.Seq > f.last+1 {
		if err := f.fill(ctx, m.Seq-1); err != nil {
			return err
		}
		if m.Seq <= f.last {
			return nil
		}
	}
	f.emit(m)
	return nil
}

// emit delivers the next message.
func (f *follower) emit(m natter.Message) {
	f.last = m.Seq
	f.delivered = true
	f.s.OnMessage(m)
}

// fill delivers the messages after the cursor up to at least seq upTo, read over HTTP.
func (f *follower) fill(ctx context.Context, upTo int64) error {
	for f.last < upTo {
		page, err := f.c.Messages(ctx, f.s.Room, Query{After: f.last, Limit: int(min(upTo-f.last, fillPage))})
		if err != nil {
			return err
		}
		if err := f.checkEpoch(page.Epoch); err != nil {
			return err
		}
		before := f.last
		if err := f.deliverPage(page.Messages); err != nil {
			return err
		}
		if f.last == before {
			return fmt.Errorf("natter client: room %s: the server has no message %d although it sent %d", f.s.Room, f.last+1, upTo+1)
		}
	}
	return nil
}

// deliverPage delivers an HTTP page, which must continue the cursor without a gap: it is the
// answer to "after last", so a skip means the server is broken and the session should restart.
func (f *follower) deliverPage(msgs []natter.Message) error {
	for _, m := range msgs {
		switch {
		case m.Room != "" && m.Room != f.s.Room, m.Seq <= f.last:
		case m.Seq == f.last+1:
			f.emit(m)
		default:
			return fmt.Errorf("natter client: room %s: a read after seq %d skipped to %d", f.s.Room, f.last, m.Seq)
		}
	}
	return nil
}

// runWS follows the room over one WebSocket connection until it fails.
func (f *follower) runWS(ctx context.Context) error {
	conn, err := f.c.DialWS(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetIdleTimeout(f.c.idleTimeout)
	if err := conn.Subscribe(ctx, f.s.Room, f.last); err != nil {
		return err
	}
	for {
		fr, err := conn.ReadFrame(ctx)
		if err != nil {
			return err
		}
		switch fr.Type {
		case "subscribed":
			if fr.Room == f.s.Room {
				if err := f.checkEpoch(fr.Epoch); err != nil {
					return err
				}
			}
		case "message":
			if err := f.deliver(ctx, *fr.Message); err != nil {
				return err
			}
		case "error":
			// Only errors about this subscription end it (a refused subscribe names the room).
			if fr.Ref == f.s.Room || fr.Ref == "" {
				return fr.Err()
			}
		}
	}
}

// runPoll follows the room with long-polls until one fails.
func (f *follower) runPoll(ctx context.Context) error {
	for {
		page, err := f.c.Messages(ctx, f.s.Room, Query{After: f.last, Limit: fillPage, Wait: pollWait})
		if err != nil {
			return err
		}
		if err := f.checkEpoch(page.Epoch); err != nil {
			return err
		}
		if len(page.Messages) > 0 {
			if err := f.deliver(ctx, page.Messages[0]); err != nil {
				return err
			}
			if err := f.deliverPage(page.Messages[1:]); err != nil {
				return err
			}
		}
	}
}

// runSSE follows the room over one event stream until it fails.
func (f *follower) runSSE(ctx context.Context) error {
	// The contract's event stream doesn't carry the epoch, so one HTTP read checks it first (and
	// catches up on a page of messages, which shortens the stream's replay).
	page, err := f.c.Messages(ctx, f.s.Room, Query{After: f.last, Limit: fillPage})
	if err != nil {
		return err
	}
	if err := f.checkEpoch(page.Epoch); err != nil {
		return err
	}
	if err := f.deliverPage(page.Messages); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.c.endpoint("/api/rooms/"+url.PathEscape(f.s.Room)+"/events"), nil)
	if err != nil {
		return &natter.Error{Code: natter.EINVALID, Message: "request can't be built", Err: err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(f.last, 10))
	f.c.authorize(req.Header)
	hc := *f.c.http
	hc.Timeout = 0 // a stream lasts as long as ctx; the idle timer below catches dead ones
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("natter client: event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return refusal(resp, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("natter client: event stream answered with Content-Type %q", ct)
	}

	var idle atomic.Bool
	timer := time.AfterFunc(f.c.idleTimeout, func() { idle.Store(true); cancel() })
	defer timer.Stop()
	events := newEventReader(resp.Body, func() { timer.Reset(f.c.idleTimeout) })
	for {
		ev, err := events.next()
		if err != nil {
			if idle.Load() {
				return fmt.Errorf("natter client: event stream silent for %v", f.c.idleTimeout)
			}
			if err == io.EOF {
				return errors.New("natter client: event stream ended")
			}
			return fmt.Errorf("natter client: event stream: %w", err)
		}
		switch ev.Type {
		case "message":
			var m natter.Message
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				return fmt.Errorf("natter client: event stream: bad message event: %w", err)
			}
			if err := f.deliver(ctx, m); err != nil {
				return err
			}
		case "subscribed":
			// Not in the contract for SSE, but natter sends it: a reset seen at once is better.
			var s struct {
				Room  string `json:"room"`
				Epoch string `json:"epoch"`
			}
			if json.Unmarshal([]byte(ev.Data), &s) == nil && (s.Room == "" || s.Room == f.s.Room) {
				if err := f.checkEpoch(s.Epoch); err != nil {
					return err
				}
			}
		}
	}
}
