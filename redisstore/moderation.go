package redisstore

import (
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

// Moderation (natter.ModerationStore). A room's bans are a hash, PREFIX:bans:ROOM, of user to
// banValue; suspended accounts are the set PREFIX:suspended.

// banValue is a ban as stored: when, in nanoseconds, who banned, until when (nanoseconds, 0 for
// until lifted) and why, separated by colons (the reason last: it may hold colons). Bans stored
// before ban terms existed have the first two alone.
func banValue(at time.Time, ban natter.Ban) string {
	var until int64
	if !ban.Until.IsZero() {
		until = ban.Until.UnixNano()
	}
	return strconv.FormatInt(at.UnixNano(), 10) + ":" + ban.By + ":" + strconv.FormatInt(until, 10) + ":" + ban.Reason
}

// parseBan reads a banValue.
func parseBan(user, v string) (natter.Ban, error) {
	f := strings.SplitN(v, ":", 4)
	at, err := strconv.ParseInt(f[0], 10, 64)
	if len(f) < 2 || len(f) == 3 || err != nil {
		return natter.Ban{}, natter.Internal("redis: ban record", fmt.Errorf("malformed: %q", v))
	}
	b := natter.Ban{User: user, By: f[1], At: time.Unix(0, at).UTC()}
	if len(f) == 4 {
		until, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return natter.Ban{}, natter.Internal("redis: ban record", fmt.Errorf("malformed: %q", v))
		}
		if until != 0 {
			b.Until = time.Unix(0, until).UTC()
		}
		b.Reason = f[3]
	}
	return b, nil
}

// BanUser bars ban.User from posting in room and tells every node, on the channel of revocations
// (Revocation.Ban), in one transaction. Banning again replaces the record. Errors: EINVALID (a
// bad user name), ENOTFOUND (no such room).
func (s *Store) BanUser(ctx context.Context, room string, ban natter.Ban) error {
	if !natter.ValidUserName(ban.User) {
		return natter.Errorf(natter.EINVALID, "user name %q is not valid: a ban needs a user's name", ban.User)
	}
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	note, _ := json.Marshal(revoked{User: ban.User, Room: room, Ban: true})
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.key("bans", room), ban.User, banValue(s.now(), ban))
		p.Publish(ctx, s.key("revoked"), note)
		return nil
	})
	if err != nil {
		return unavailable("ban user", err)
	}
	return nil
}

// UnbanUser lifts user's ban in room (not being banned is no error) and tells every node as
// BanUser does. ENOTFOUND if room does not exist.
func (s *Store) UnbanUser(ctx context.Context, room, user string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	note, _ := json.Marshal(revoked{User: user, Room: room, Ban: true})
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.key("bans", room), user)
		p.Publish(ctx, s.key("revoked"), note)
		return nil
	})
	if err != nil {
		return unavailable("unban user", err)
	}
	return nil
}

// Bans lists room's active bans ordered by user name; empty, not nil, for none.
func (s *Store) Bans(ctx context.Context, room string) ([]natter.Ban, error) {
	recs, err := s.rdb.HGetAll(ctx, s.key("bans", room)).Result()
	if err != nil {
		return nil, unavailable("read bans", err)
	}
	bans := make([]natter.Ban, 0, len(recs))
	now := s.now()
	for user, v := range recs {
		b, err := parseBan(user, v)
		if err != nil {
			return nil, err
		}
		if b.Active(now) { // an ended ban stays a field of the hash, read past, until banned again or lifted
			bans = append(bans, b)
		}
	}
	slices.SortFunc(bans, func(a, b natter.Ban) int { return strings.Compare(a.User, b.User) })
	return bans, nil
}

// SetSuspended suspends or reinstates an account: the set PREFIX:suspended holds the suspended
// ones. ENOTFOUND if there is no such account (accounts are never deleted, so none can vanish
// between the check and the write).
func (s *Store) SetSuspended(ctx context.Context, name string, suspended bool) error {
	ok, err := s.rdb.HExists(ctx, s.key("users"), name).Result()
	if err != nil {
		return unavailable("read user", err)
	}
	if !ok {
		return natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	if suspended {
		err = s.rdb.SAdd(ctx, s.key("suspended"), name).Err()
	} else {
		err = s.rdb.SRem(ctx, s.key("suspended"), name).Err()
	}
	if err != nil {
		return unavailable("set suspended", err)
	}
	return nil
}

// Suspended lists the suspended accounts by name: the members of PREFIX:suspended, sorted.
func (s *Store) Suspended(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.key("suspended")).Result()
	if err != nil {
		return nil, unavailable("read suspended", err)
	}
	slices.Sort(names)
	if names == nil {
		names = []string{}
	}
	return names, nil
}
