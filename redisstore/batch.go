package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"natter"
)

// Sends and client_id lookups go to Redis in pipelines: one goroutine takes whatever is queued
// (up to maxBatch) and sends it in one round trip, so a node's concurrent senders share round
// trips the way they share commits in SQLite. The queue keeps one goroutine's calls in order, and
// Redis runs a pipeline in order, so a connection's messages get seqs in the order it sent them
// and a lookup sees every append queued before it.
const (
	maxBatch   = 256
	queueDepth = 4096
)

// call is one queued send or lookup.
type call struct {
	ctx    context.Context
	req    natter.AppendRequest
	lookup bool   // FindByClientID: find, store nothing
	id     string // the new message's id
	done   func(msg natter.Message, created bool, err error)
}

// findScript finds the message (room, author, client_id) stored, with AppendMessage's answers:
// {"notfound"} (no room), {"none"}, or {"dup", seq, id, ts, body, kind, target, reply_to}.
// KEYS: the rooms hash, the room's client_id hash, its stream, its erased entries.
var findScript = redis.NewScript(luaStored + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'notfound'} end
local seq = redis.call('HGET', KEYS[2], ARGV[2] .. '\0' .. ARGV[3])
if not seq then return {'none'} end
return stored(KEYS[3], KEYS[4], ARGV[1], seq)`)

// enqueue queues c for the batcher, or refuses: the store is closed, or c's context ended.
func (s *Store) enqueue(c *call) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.qclosed {
		return natter.Errorf(natter.EUNAVAILABLE, "the store is closed")
	}
	select {
	case s.queue <- c:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// wait runs c through the queue and waits for its answer.
func (s *Store) wait(ctx context.Context, c *call) (natter.Message, bool, error) {
	type result struct {
		msg     natter.Message
		created bool
		err     error
	}
	ch := make(chan result, 1)
	c.ctx = ctx
	c.done = func(m natter.Message, created bool, err error) { ch <- result{m, created, err} }
	if err := s.enqueue(c); err != nil {
		return natter.Message{}, false, err
	}
	select {
	case r := <-ch:
		return r.msg, r.created, r.err
	case <-ctx.Done():
		// It may still be stored; a retry with the same client_id finds it.
		return natter.Message{}, false, ctx.Err()
	}
}

// AppendMessage stores req at the end of its room's log: acknowledged once Redis ran the script.
func (s *Store) AppendMessage(ctx context.Context, req natter.AppendRequest) (natter.Message, bool, error) {
	if err := natter.ValidateAppend(req, s.maxBody); err != nil {
		return natter.Message{}, false, err
	}
	return s.wait(ctx, &call{req: req, id: newMessageID()})
}

// AppendMessageAsync queues req; done gets the stored message once Redis ran the script.
func (s *Store) AppendMessageAsync(ctx context.Context, req natter.AppendRequest, done func(msg natter.Message, created bool, err error)) error {
	if err := natter.ValidateAppend(req, s.maxBody); err != nil {
		return err
	}
	return s.enqueue(&call{ctx: ctx, req: req, id: newMessageID(), done: done})
}

var _ natter.AsyncAppender = (*Store)(nil)

// FindByClientID returns the message stored for req's (Room, Author, ClientID), storing nothing;
// Body is ignored. It queues behind the appends queued before it, and so sees them.
func (s *Store) FindByClientID(ctx context.Context, req natter.AppendRequest) (natter.Message, bool, error) {
	if req.ClientID == "" {
		if err := s.roomExists(ctx, req.Room); err != nil {
			return natter.Message{}, false, err
		}
		return natter.Message{}, false, nil
	}
	return s.wait(ctx, &call{req: req, lookup: true})
}

func newMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// batchLoop sends the queued calls in pipelines until the queue is closed and drained.
func (s *Store) batchLoop() {
	defer close(s.batchDone)
	batch := make([]*call, 0, maxBatch)
	for first := range s.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// runBatch sends batch in one pipeline and answers each call.
func (s *Store) runBatch(batch []*call) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done(natter.Message{}, false, err) // given up on before it was sent: not stored
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	results := s.pipeline(live)
	// Redis restarted, or its scripts were flushed: load them and send again the calls answered
	// NOSCRIPT (they did nothing: a script runs whole or not at all). A flush between two calls
	// of one pipeline fails the later ones only, so resending them keeps each connection's order.
	var again []int
	for i, r := range results {
		if isNoScript(r.err) {
			again = append(again, i)
		}
	}
	if len(again) > 0 && s.loadScripts(context.Background()) == nil {
		retry := make([]*call, len(again))
		for j, i := range again {
			retry[j] = live[i]
		}
		for j, r := range s.pipeline(retry) {
			results[again[j]] = r
		}
	}
	for i, c := range live {
		if err := results[i].err; err != nil {
			c.done(natter.Message{}, false, unavailable("append", err))
			continue
		}
		c.done(answer(c, results[i].res))
	}
}

// scriptResult is one script's answer in a pipeline.
type scriptResult struct {
	res []string
	err error
}

// pipeline sends calls' scripts in one round trip and returns their answers in order.
func (s *Store) pipeline(calls []*call) []scriptResult {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		r := c.req
		if c.lookup {
			cmds[i] = findScript.EvalSha(context.Background(), pipe, []string{s.key("rooms"), s.key("cid", r.Room), s.key("log", r.Room), s.key("gone", r.Room)}, r.Room, r.Author, r.ClientID)
		} else {
			cmds[i] = appendScript.EvalSha(context.Background(), pipe,
				[]string{s.key("rooms"), s.key("seq"), s.key("log", r.Room), s.key("cid", r.Room), s.key("commits"), s.key("changes", r.Room), s.key("gone", r.Room), s.key("edits", r.Room), s.key("pins", r.Room)},
				r.Room, r.Author, r.ClientID, r.Body, c.id, r.Kind, strconv.FormatInt(r.Target, 10), strconv.FormatInt(r.ReplyTo, 10))
		}
	}
	pipe.Exec(context.Background()) // each command carries its own error
	out := make([]scriptResult, len(calls))
	for i, cmd := range cmds {
		out[i].res, out[i].err = cmd.StringSlice()
	}
	return out
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// loadScripts loads the pipelined scripts into Redis's script cache.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range []*redis.Script{appendScript, findScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return unavailable("load scripts", err)
		}
	}
	return nil
}

// answer turns a script's answer into the call's result.
func answer(c *call, res []string) (natter.Message, bool, error) {
	r := c.req
	switch {
	case len(res) == 1 && res[0] == "notfound":
		return natter.Message{}, false, natter.Errorf(natter.ENOTFOUND, "room %q does not exist", r.Room)
	case len(res) == 1 && res[0] == "none" && c.lookup:
		return natter.Message{}, false, nil
	case len(res) >= 4 && (res[0] == "new" || res[0] == "dup"):
		seq, _ := strconv.ParseInt(res[1], 10, 64)
		m := natter.Message{Room: r.Room, Seq: seq, ID: res[2], ClientID: r.ClientID, Author: r.Author, Body: r.Body, TS: parseTS(res[3]), Kind: r.Kind, Target: r.Target, ReplyTo: r.ReplyTo}
		if res[0] == "dup" && len(res) >= 8 {
			m.Body, m.Kind = res[4], res[5]
			m.Target, _ = strconv.ParseInt(res[6], 10, 64)
			m.ReplyTo, _ = strconv.ParseInt(res[7], 10, 64)
		}
		if res[0] == "new" && len(res) >= 5 && res[4] == "1" {
			m.Body = "" // an edit of a message deleted before it: stored erased
		}
		m.MarkDeleted()
		return m, res[0] == "new" || (c.lookup && res[0] == "dup"), nil
	}
	return natter.Message{}, false, natter.Internal("redis: append", fmt.Errorf("unexpected answer %q", res))
}
