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

// banValue is a ban as stored: when, in nanoseconds, a colon, and who banned.
func banValue(at time.Time, by string) string {
	return strconv.FormatInt(at.UnixNano(), 10) + ":" + by
}

// BanUser bars user from posting in room and tells every node, on the channel of revocations
// (Revocation.Ban), in one transaction. Banning again keeps the first record. Errors: EINVALID (a
// bad user name), ENOTFOUND (no such room).
func (s *Store) BanUser(ctx context.Context, room, user, by string) error {
	if !natter.ValidUserName(user) {
		return natter.Errorf(natter.EINVALID, "user name %q is not valid: a ban needs a user's name", user)
	}
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	note, _ := json.Marshal(revoked{User: user, Room: room, Ban: true})
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, s.key("bans", room), user, banValue(s.now(), by))
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

// Bans lists room's bans ordered by user name; empty, not nil, for none.
func (s *Store) Bans(ctx context.Context, room string) ([]natter.Ban, error) {
	recs, err := s.rdb.HGetAll(ctx, s.key("bans", room)).Result()
	if err != nil {
		return nil, unavailable("read bans", err)
	}
	bans := make([]natter.Ban, 0, len(recs))
	for user, v := range recs {
		ns, by, ok := strings.Cut(v, ":")
		n, perr := strconv.ParseInt(ns, 10, 64)
		if !ok || perr != nil {
			return nil, natter.Internal("redis: ban record", fmt.Errorf("malformed: %q", v))
		}
		bans = append(bans, natter.Ban{User: user, By: by, At: time.Unix(0, n).UTC()})
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
