package redisstore

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// appendScript stores one message, or finds the one its client_id stored before.
//
// KEYS: the rooms hash, the seq hash, the room's stream, the room's client_id hash, the channel,
// the room's sorted set of edits and deletions (their seqs, for ChangesAfter).
// ARGV: room, author, client_id ("" for none), body, id, kind ("" for a plain message), target,
// reply_to ("0" for none).
// It returns {"notfound"}, {"dup", seq, id, ts, body, kind, target, reply_to} or {"new", seq, id,
// ts}; ts is Redis's clock in nanoseconds, as a string (Lua numbers are doubles, which would round
// it). An edit's or a deletion's entry has the fields kind and target too, a reply's reply.
var appendScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'notfound'} end
local key = ''
if ARGV[3] ~= '' then
  key = ARGV[2] .. '\0' .. ARGV[3]
  local seq = redis.call('HGET', KEYS[4], key)
  if seq then
    local e = redis.call('XRANGE', KEYS[3], seq .. '-0', seq .. '-0')
    local f = e[1][2]
    local m = {}
    for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
    return {'dup', seq, m.id, m.ts, m.body, m.kind or '', m.target or '0', m.reply or '0'}
  end
end
local seq = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local t = redis.call('TIME')
local ts = t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
if ARGV[6] == '' and ARGV[8] == '0' then
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', ARGV[4], 'ts', ts)
elseif ARGV[6] == '' then
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', ARGV[4], 'ts', ts, 'reply', ARGV[8])
else
  redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[5], 'cid', ARGV[3], 'author', ARGV[2], 'body', ARGV[4], 'ts', ts, 'kind', ARGV[6], 'target', ARGV[7])
  redis.call('ZADD', KEYS[6], seq, seq)
end
if key ~= '' then redis.call('HSET', KEYS[4], key, seq) end
redis.call('PUBLISH', KEYS[5], cjson.encode({room = ARGV[1], seq = tostring(seq), id = ARGV[5], cid = ARGV[3], author = ARGV[2], body = ARGV[4], ts = ts, kind = ARGV[6], target = ARGV[7], reply = ARGV[8]}))
return {'new', tostring(seq), ARGV[5], ts}`)

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
	entries, err := s.rdb.XRangeN(ctx, s.key("log", room), strconv.FormatInt(from, 10)+"-0", stop, int64(limit)).Result()
	if err != nil {
		return nil, unavailable("read log", err)
	}
	return decodeEntries(room, entries), nil
}

func decodeEntries(room string, entries []redis.XMessage) []natter.Message {
	msgs := make([]natter.Message, 0, len(entries))
	for _, e := range entries {
		seqStr, _, _ := strings.Cut(e.ID, "-")
		seq, _ := strconv.ParseInt(seqStr, 10, 64)
		str := func(k string) string { v, _ := e.Values[k].(string); return v }
		target, _ := strconv.ParseInt(str("target"), 10, 64)
		reply, _ := strconv.ParseInt(str("reply"), 10, 64)
		msgs = append(msgs, natter.Message{Room: room, Seq: seq, ID: str("id"), ClientID: str("cid"), Author: str("author"), Body: str("body"), TS: parseTS(str("ts")), Kind: str("kind"), Target: target, ReplyTo: reply})
	}
	return msgs
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
	entries, err := s.rdb.XRevRangeN(ctx, s.key("log", room), strconv.FormatInt(before-1, 10)+"-0", "-", int64(limit)).Result()
	if err != nil {
		return nil, unavailable("read log", err)
	}
	msgs := decodeEntries(room, entries)
	slices.Reverse(msgs)
	return msgs, nil
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
	if s.onRevoke != nil {
		s.onRevoke(Revocation{TokenHash: r.TokenHash, User: r.User, Keep: r.Keep, At: time.Unix(0, r.At), Room: r.Room, Ban: r.Ban})
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
	for room, last := range s.last {
		if _, ok := seqs[room]; !ok && last > 0 {
			s.log.Error("redis: a room's counter is gone: Redis lost data; restart the natter nodes so that clients reload", "room", room, "was", last)
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
