package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// luaStored is a Lua function for the scripts: the answer {"dup", seq, id, ts, body, kind, target,
// reply_to} for the entry seq of a room's log, read from the stream (log) or, if a deletion erased
// it, from the erased entries' hash (gone), with an empty body.
const luaStored = `
local function stored(log, gone, room, seq)
  local e = redis.call('XRANGE', log, seq .. '-0', seq .. '-0')
  local m = {}
  if e[1] then
    local f = e[1][2]
    for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
  else
    local g = redis.call('HGET', gone, seq)
    if not g then return redis.error_reply('natter: entry ' .. seq .. ' of room ' .. room .. ' is missing') end
    m = cjson.decode(g)
    m.body = ''
  end
  return {'dup', seq, m.id, m.ts, m.body, m.kind or '', m.target or '0', m.reply or '0'}
end
`

// appendScript stores one message, or finds the one its client_id stored before.
//
// KEYS: the rooms hash, the seq hash, the room's stream, the room's client_id hash, the channel,
// the room's sorted set of edits and deletions (their seqs, for ChangesAfter), the room's erased
// entries (a hash: seq -> the entry's fields but its body, as JSON), the room's edits by target (a
// hash: target -> the seqs of its edits, each followed by a space), the room's pinned messages (a
// hash: seq -> when pinned, in nanoseconds, a colon, and by whom; a deletion unpins).
// ARGV: room, author, client_id ("" for none), body, id, kind ("" for a plain message), target,
// reply_to ("0" for none).
// It returns {"notfound"}, {"dup", seq, id, ts, body, kind, target, reply_to} or {"new", seq, id,
// ts, erased}; ts is Redis's clock in nanoseconds, as a string (Lua numbers are doubles, which
// would round it); erased is "1" for an edit stored erased (its target was deleted before it),
// else "0". An edit's or a deletion's entry has the fields kind and target too, a reply's reply.
//
// A deletion erases: its target and the target's edits leave the stream for the erased entries'
// hash, without their bodies (the stream can't change an entry in place); reads put them back in
// their holes (window).
var appendScript = redis.NewScript(luaStored + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'notfound'} end
local key = ''
if ARGV[3] ~= '' then
  key = ARGV[2] .. '\0' .. ARGV[3]
  local seq = redis.call('HGET', KEYS[4], key)
  if seq then return stored(KEYS[3], KEYS[7], ARGV[1], seq) end
end
local function erase(s, kind)
  local e = redis.call('XRANGE', KEYS[3], s .. '-0', s .. '-0')
  if not e[1] then return end
  local f = e[1][2]
  local m = {}
  for i = 1, #f, 2 do if f[i] ~= 'body' then m[f[i]] = f[i + 1] end end
  if (m.kind or '') ~= kind then return end
  redis.call('HSET', KEYS[7], s, cjson.encode(m))
  redis.call('XDEL', KEYS[3], s .. '-0')
end
local body = ARGV[4]
local erased = '0'
if ARGV[6] == 'edit' and redis.call('HEXISTS', KEYS[7], ARGV[7]) == 1 then
  body = ''
  erased = '1'
end
local seq = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local t = redis.call('TIME')
local ts = t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
if ARGV[6] == '' and ARGV[8] == '0' then
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', body, 'ts', ts)
elseif ARGV[6] == '' then
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', body, 'ts', ts, 'reply', ARGV[8])
else
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', body, 'ts', ts, 'kind', ARGV[6], 'target', ARGV[7])
  redis.call('ZADD', KEYS[6], seq, seq)
end
if ARGV[6] == 'delete' then
  erase(ARGV[7], '')
  local edits = redis.call('HGET', KEYS[8], ARGV[7])
  if edits then
    for e in string.gmatch(edits, '%d+') do erase(e, 'edit') end
    redis.call('HDEL', KEYS[8], ARGV[7])
  end
  redis.call('HDEL', KEYS[9], ARGV[7])
elseif ARGV[6] == 'edit' and erased == '0' then
  redis.call('HSET', KEYS[8], ARGV[7], (redis.call('HGET', KEYS[8], ARGV[7]) or '') .. seq .. ' ')
elseif ARGV[6] == 'pin' then
  redis.call('HSET', KEYS[9], ARGV[7], ts .. ':' .. ARGV[2])
elseif ARGV[6] == 'unpin' then
  redis.call('HDEL', KEYS[9], ARGV[7])
end
if key ~= '' then redis.call('HSET', KEYS[4], key, seq) end
redis.call('PUBLISH', KEYS[5], cjson.encode({room = ARGV[1], seq = tostring(seq), id = ARGV[5], cid = ARGV[3], author = ARGV[2], body = body, ts = ts, kind = ARGV[6], target = ARGV[7], reply = ARGV[8]}))
return {'new', tostring(seq), ARGV[5], ts, erased}`)

func parseTS(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Unix(0, n).UTC()
}

// rangeMessages reads the room's log from seq from to seq to (inclusive), at most limit.
func (s *Store) rangeMessages(ctx context.Context, room string, from, to int64, limit int) ([]natter.Message, error) {
	if from > to || limit <= 0 {
		return nil, nil
	}
	stop := "+"
	if to < 1<<62 {
		stop = strconv.FormatInt(to, 10) + "-0"
	}
	var last *redis.StringCmd
	var entries *redis.XMessageSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		last = p.HGet(ctx, s.key("seq"), room)
		entries = p.XRangeN(ctx, s.key("log", room), strconv.FormatInt(from, 10)+"-0", stop, int64(limit))
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, unavailable("read log", err)
	}
	n, _ := last.Int64() // the room's last seq, read before the entries: none above it is read
	return s.window(ctx, room, from, min(to, from+int64(limit)-1, n), entries.Val(), false)
}

// window returns the entries lo to hi of room's log, oldest first: those read from the stream
// (read, oldest first or, fromTop, newest first; those outside lo..hi are left out) and, in the holes that a deletion's erasing
// left, the erased entries from their hash. A seq found in neither (a log that lost entries)
// ends the window: going up, before it; going down (fromTop), after it, so that what is returned
// is always gapless.
func (s *Store) window(ctx context.Context, room string, lo, hi int64, read []redis.XMessage, fromTop bool) ([]natter.Message, error) {
	if hi < lo {
		return []natter.Message{}, nil
	}
	msgs := decodeEntries(room, read)
	msgs = slices.DeleteFunc(msgs, func(m natter.Message) bool { return m.Seq < lo || m.Seq > hi })
	if fromTop {
		slices.Reverse(msgs) // read newest first
	}
	if int64(len(msgs)) == hi-lo+1 {
		return msgs, nil
	}
	have := make(map[int64]bool, len(msgs))
	for _, m := range msgs {
		have[m.Seq] = true
	}
	var holes []string
	for q := lo; q <= hi; q++ {
		if !have[q] {
			holes = append(holes, strconv.FormatInt(q, 10))
		}
	}
	got, err := s.rdb.HMGet(ctx, s.key("gone", room), holes...).Result()
	if err != nil {
		return nil, unavailable("read erased entries", err)
	}
	for i, v := range got {
		str, ok := v.(string)
		if !ok {
			continue
		}
		seq, _ := strconv.ParseInt(holes[i], 10, 64)
		msgs = append(msgs, decodeErased(room, seq, str))
	}
	slices.SortFunc(msgs, func(a, b natter.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	if fromTop {
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Seq != hi-int64(len(msgs)-1-i) {
				return msgs[i+1:], nil
			}
		}
		return msgs, nil
	}
	for i, m := range msgs {
		if m.Seq != lo+int64(i) {
			return msgs[:i], nil
		}
	}
	return msgs, nil
}

func decodeEntries(room string, entries []redis.XMessage) []natter.Message {
	msgs := make([]natter.Message, 0, len(entries))
	for _, e := range entries {
		seqStr, _, _ := strings.Cut(e.ID, "-")
		seq, _ := strconv.ParseInt(seqStr, 10, 64)
		msgs = append(msgs, fromFields(room, seq, func(k string) string { v, _ := e.Values[k].(string); return v }))
	}
	return msgs
}

// decodeErased decodes an erased entry: its fields but the body, as the append script keeps them.
func decodeErased(room string, seq int64, fields string) natter.Message {
	var f map[string]string
	json.Unmarshal([]byte(fields), &f) // written by the script: a flat object of strings
	return fromFields(room, seq, func(k string) string {
		if k == "body" {
			return ""
		}
		return f[k]
	})
}

// fromFields makes the message at seq from its entry's fields.
func fromFields(room string, seq int64, str func(k string) string) natter.Message {
	target, _ := strconv.ParseInt(str("target"), 10, 64)
	reply, _ := strconv.ParseInt(str("reply"), 10, 64)
	m := natter.Message{Room: room, Seq: seq, ID: str("id"), ClientID: str("cid"), Author: str("author"), Body: str("body"), TS: parseTS(str("ts")), Kind: str("kind"), Target: target, ReplyTo: reply}
	m.MarkDeleted()
	return m
}

// roomExists answers ENOTFOUND for a room that is not there.
func (s *Store) roomExists(ctx context.Context, room string) error {
	ok, err := s.rdb.HExists(ctx, s.key("rooms"), room).Result()
	if err != nil {
		return unavailable("read room", err)
	}
	if !ok {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", room)
	}
	return nil
}

// MessagesAfter returns up to limit messages with seq > after, oldest first.
func (s *Store) MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	msgs, err := s.rangeMessages(ctx, room, max(after, 0)+1, 1<<62, limit)
	if msgs == nil && err == nil {
		msgs = []natter.Message{}
	}
	return msgs, err
}

// MessagesBefore returns the up to limit messages just before seq before, oldest first.
func (s *Store) MessagesBefore(ctx context.Context, room string, before int64, limit int) ([]natter.Message, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	if before <= 1 || limit <= 0 {
		return []natter.Message{}, nil
	}
	var last *redis.StringCmd
	var entries *redis.XMessageSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		last = p.HGet(ctx, s.key("seq"), room)
		entries = p.XRevRangeN(ctx, s.key("log", room), strconv.FormatInt(before-1, 10)+"-0", "-", int64(limit))
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, unavailable("read log", err)
	}
	n, _ := last.Int64()
	hi := min(before-1, n)
	return s.window(ctx, room, max(1, hi-int64(limit)+1), hi, entries.Val(), true)
}

func sortRooms(rooms []natter.Room) {
	slices.SortFunc(rooms, func(a, b natter.Room) int { return strings.Compare(a.Name, b.Name) })
}

// published is a message as the append script publishes it.
type published struct {
	Room   string `json:"room"`
	Seq    string `json:"seq"`
	ID     string `json:"id"`
	CID    string `json:"cid"`
	Author string `json:"author"`
	Body   string `json:"body"`
	TS     string `json:"ts"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Reply  string `json:"reply"`
}

// deliverLoop hands every node's commits to OnCommit, in seq order per room without a gap, until
// ctx ends. After every resubscription (the first subscription is Open's) it reads the counters
// and delivers what the channel lost meanwhile.
func (s *Store) deliverLoop(ctx context.Context) {
	defer close(s.done)
	wait := 50 * time.Millisecond
	var failing time.Time // since when Receive fails; zero while it works
	var logged time.Time
	for {
		v, err := s.sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.subscribed.Store(false)
			// Once when it starts failing, then every 30 s while it goes on.
			if now := time.Now(); failing.IsZero() || now.Sub(logged) >= 30*time.Second {
				if failing.IsZero() {
					failing = now
				}
				logged = now
				s.log.Warn("redis: the subscription to commits failed; retrying", "err", err, "failing_for", now.Sub(failing).Round(time.Second))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = 50 * time.Millisecond
		if !failing.IsZero() {
			s.log.Info("redis: subscribed again", "after", time.Since(failing).Round(time.Millisecond))
			failing = time.Time{}
		}
		switch v := v.(type) {
		case *redis.Subscription:
			if v.Channel == s.key("commits") {
				s.resubscribed.Add(1)
				s.resync(ctx)
				s.subscribed.Store(true)
			}
			if v.Channel == s.key("revoked") && s.onResub != nil {
				s.onResub()
			}
		case *redis.Message:
			switch v.Channel {
			case s.key("revoked"):
				s.revoked(v.Payload)
				continue
			case s.key("presence"):
				s.presenceArrived(v.Payload)
				continue
			}
			var p published
			if err := json.Unmarshal([]byte(v.Payload), &p); err != nil {
				s.log.Error("redis: a commit that can't be read", "err", err)
				continue
			}
			seq, _ := strconv.ParseInt(p.Seq, 10, 64)
			target, _ := strconv.ParseInt(p.Target, 10, 64)
			reply, _ := strconv.ParseInt(p.Reply, 10, 64)
			s.deliver(ctx, natter.Message{Room: p.Room, Seq: seq, ID: p.ID, ClientID: p.CID, Author: p.Author, Body: p.Body, TS: parseTS(p.TS), Kind: p.Kind, Target: target, ReplyTo: reply})
		}
	}
}

// revoked hands a revocation to OnRevoke.
func (s *Store) revoked(payload string) {
	var r revoked
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		s.log.Error("redis: a revocation that can't be read", "err", err)
		return
	}
	if r.Deleted {
		delete(s.last, r.Room) // its counter is gone with it; the name never comes back
	}
	if s.onRevoke != nil {
		s.onRevoke(Revocation{TokenHash: r.TokenHash, User: r.User, Keep: r.Keep, At: time.Unix(0, r.At), Room: r.Room, Ban: r.Ban, Deleted: r.Deleted})
	}
}

// deliver hands m on after whatever came before it in its room and was not delivered yet. If
// those can't be read, m waits with them for the next message or resubscription.
func (s *Store) deliver(ctx context.Context, m natter.Message) {
	last := s.last[m.Room]
	if m.Seq <= last {
		return // delivered already (by a catch-up)
	}
	if m.Seq > last+1 && !s.catchUp(ctx, m.Room, m.Seq-1) {
		return
	}
	s.fromChannel.Add(1)
	s.commit([]natter.Message{m})
}

// catchUp delivers the room's messages after the last delivered, up to seq to, from its log. It
// reports whether all of them were.
func (s *Store) catchUp(ctx context.Context, room string, to int64) bool {
	for s.last[room] < to {
		msgs, err := s.rangeMessages(ctx, room, s.last[room]+1, to, 1000)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("redis: reading missed messages failed", "room", room, "err", err)
			}
			return false
		}
		if len(msgs) == 0 || msgs[0].Seq != s.last[room]+1 {
			s.log.Error("redis: a room's log has a hole", "room", room, "after", s.last[room])
			return false
		}
		s.fromLog.Add(int64(len(msgs)))
		s.commit(msgs)
	}
	return true
}

func (s *Store) commit(msgs []natter.Message) {
	s.last[msgs[0].Room] = msgs[len(msgs)-1].Seq
	if s.onCommit != nil {
		s.onCommit(msgs)
	}
}

// resync delivers what every room stored beyond what was delivered, after a resubscription.
func (s *Store) resync(ctx context.Context) {
	seqs, err := s.rdb.HGetAll(ctx, s.key("seq")).Result()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("redis: reading the counters after resubscribing failed", "err", err)
		}
		return
	}
	var missing []string
	for room, last := range s.last {
		if _, ok := seqs[room]; !ok && last > 0 {
			missing = append(missing, room)
		}
	}
	if len(missing) > 0 {
		// A room deleted while this node could not hear of it, or Redis lost data.
		deleted, err := s.rdb.HMGet(ctx, s.key("deleted"), missing...).Result()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("redis: reading the deleted rooms after resubscribing failed", "err", err)
			}
			return
		}
		for i, room := range missing {
			if deleted[i] != nil {
				s.revoked(`{"room":` + strconv.Quote(room) + `,"deleted":true}`)
				continue
			}
			s.log.Error("redis: a room's counter is gone: Redis lost data; restart the natter nodes so that clients reload", "room", room, "was", s.last[room])
			delete(s.last, room)
		}
	}
	for room, v := range seqs {
		seq, _ := strconv.ParseInt(v, 10, 64)
		switch last := s.last[room]; {
		case seq > last:
			s.catchUp(ctx, room, seq)
		case seq < last:
			// Only a Redis that lost its data counts backwards: the room's log is not the one
			// this node delivered. Deliver the new one from where it is.
			s.log.Error("redis: a room's counter went back: Redis lost data; restart the natter nodes so that clients reload", "room", room, "was", last, "now", seq)
			s.last[room] = seq
		}
	}
}

// Pins lists room's pinned messages, the latest pinned first: the append script keeps them in
// the hash PREFIX:pins:ROOM.
func (s *Store) Pins(ctx context.Context, room string) ([]natter.Pin, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	recs, err := s.rdb.HGetAll(ctx, s.key("pins", room)).Result()
	if err != nil {
		return nil, unavailable("read pins", err)
	}
	pins := make([]natter.Pin, 0, len(recs))
	for seqStr, v := range recs {
		seq, err1 := strconv.ParseInt(seqStr, 10, 64)
		ns, by, ok := strings.Cut(v, ":")
		at, err2 := strconv.ParseInt(ns, 10, 64)
		if err1 != nil || err2 != nil || !ok {
			return nil, natter.Internal("redis: pin record", fmt.Errorf("malformed: %q = %q", seqStr, v))
		}
		pins = append(pins, natter.Pin{Seq: seq, By: by, At: time.Unix(0, at).UTC()})
	}
	slices.SortFunc(pins, func(a, b natter.Pin) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(b.Seq, a.Seq))
	})
	return pins, nil
}
