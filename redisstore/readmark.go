package redisstore

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"natter"
)

// Read marks: a hash per account, PREFIX:marks:USER, of room -> "EPOCH:SEQ". Redis takes a mark
// as it comes (a few microseconds), so unlike SQLite nothing is held back in memory, and every
// node sees a mark at once.

// setMark moves the mark ARGV[1] to ARGV[2]:ARGV[3] unless it is already as far in that epoch.
var setMark = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
	local epoch, seq = string.match(cur, '^(.*):(%d+)$')
	if epoch == ARGV[2] and tonumber(seq) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return 1
`)

// SetReadMark moves user's mark in mark.Room up to mark.Seq (natter.ReadMarkStore).
func (s *Store) SetReadMark(ctx context.Context, user string, mark natter.ReadMark) error {
	if !natter.ValidUserName(user) {
		return natter.Errorf(natter.EINVALID, "user name %q is not valid", user)
	}
	room, err := s.Room(ctx, mark.Room)
	if err != nil {
		return err
	}
	if err := natter.CheckReadMark(room, mark); err != nil {
		return err
	}
	if err := setMark.Run(ctx, s.rdb, []string{s.key("marks", user)}, mark.Room, mark.Epoch, mark.Seq).Err(); err != nil {
		return unavailable("set read mark", err)
	}
	return nil
}

// ReadMarks returns user's marks.
func (s *Store) ReadMarks(ctx context.Context, user string) ([]natter.ReadMark, error) {
	v, err := s.rdb.HGetAll(ctx, s.key("marks", user)).Result()
	if err != nil {
		return nil, unavailable("read marks", err)
	}
	marks := make([]natter.ReadMark, 0, len(v))
	for room, val := range v {
		i := strings.LastIndexByte(val, ':')
		seq, err := strconv.ParseInt(val[i+1:], 10, 64)
		if i < 0 || err != nil {
			return nil, natter.Errorf(natter.EINTERNAL, "redis: read mark %q of %s in room %q is not EPOCH:SEQ", val, user, room)
		}
		marks = append(marks, natter.ReadMark{Room: room, Epoch: val[:i], Seq: seq})
	}
	return marks, nil
}

// ChangesAfter returns how many of room's entries after seq after are edits or deletions: the
// append script keeps their seqs in a sorted set per room.
func (s *Store) ChangesAfter(ctx context.Context, room string, after int64) (int64, error) {
	n, err := s.rdb.ZCount(ctx, s.key("changes", room), "("+strconv.FormatInt(after, 10), "+inf").Result()
	if err != nil {
		return 0, unavailable("count changes", err)
	}
	return n, nil
}

// ChangesSince returns the newest up to limit edits and deletions of room after seq after, oldest
// first: their seqs from the room's sorted set, then each entry from the log, in one pipeline.
func (s *Store) ChangesSince(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = natter.DefaultPageSize
	}
	seqs, err := s.rdb.ZRevRangeByScore(ctx, s.key("changes", room), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(after, 10), Max: "+inf", Count: int64(limit)}).Result()
	if err != nil {
		return nil, unavailable("read changes", err)
	}
	slices.Reverse(seqs)
	return s.entriesAt(ctx, room, seqs)
}

// entriesAt reads the entries of room's log at seqs, in that order, each from the stream or, an
// entry that was erased, from the erased entries, in one pipeline. A seq found in neither is left
// out.
func (s *Store) entriesAt(ctx context.Context, room string, seqs []string) ([]natter.Message, error) {
	msgs := make([]natter.Message, 0, len(seqs))
	if len(seqs) == 0 {
		return msgs, nil
	}
	cmds := make([]*redis.XMessageSliceCmd, len(seqs))
	gone := make([]*redis.StringCmd, len(seqs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, seq := range seqs {
			cmds[i] = p.XRange(ctx, s.key("log", room), seq+"-0", seq+"-0")
			gone[i] = p.HGet(ctx, s.key("gone", room), seq)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, unavailable("read entries", err)
	}
	for i := range cmds {
		if e := cmds[i].Val(); len(e) > 0 {
			msgs = append(msgs, decodeEntries(room, e)...)
		} else if f, err := gone[i].Result(); err == nil {
			seq, _ := strconv.ParseInt(seqs[i], 10, 64)
			msgs = append(msgs, decodeErased(room, seq, f))
		}
	}
	return msgs, nil
}

// Edits returns the edits of message target in room, oldest first (natter.MessageStore): their
// seqs from the room's index of edits by target, then the entries.
func (s *Store) Edits(ctx context.Context, room string, target int64) ([]natter.Message, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	list, err := s.rdb.HGet(ctx, s.key("edits", room), strconv.FormatInt(target, 10)).Result()
	if err != nil && err != redis.Nil {
		return nil, unavailable("read edits", err)
	}
	return s.entriesAt(ctx, room, strings.Fields(list))
}
