package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"natter"
)

// Rooms an account closed (natter.ReadMarkStore): a hash per account, PREFIX:hidden:USER, of
// room -> "SEQ:EPOCH". The seq comes first, so that an epoch holding colons still parses.

// HideRoom records that user closed at.Room when its log ended at at.Seq in epoch at.Epoch;
// hiding again replaces the record. Errors: EINVALID (a bad user or room name, a seq below 0),
// ENOTFOUND (no such room).
func (s *Store) HideRoom(ctx context.Context, user string, at natter.ReadMark) error {
	if err := natter.CheckHide(user, at); err != nil {
		return err
	}
	if err := s.roomExists(ctx, at.Room); err != nil {
		return err
	}
	v := strconv.FormatInt(at.Seq, 10) + ":" + at.Epoch
	if err := s.rdb.HSet(ctx, s.key("hidden", user), at.Room, v).Err(); err != nil {
		return unavailable("hide room", err)
	}
	return nil
}

// ShowRoom forgets user's HideRoom of room; none, or no such room, is no error.
func (s *Store) ShowRoom(ctx context.Context, user, room string) error {
	if err := s.rdb.HDel(ctx, s.key("hidden", user), room).Err(); err != nil {
		return unavailable("show room", err)
	}
	return nil
}

// HiddenRooms returns user's HideRoom records by room name; empty, not nil, for none.
func (s *Store) HiddenRooms(ctx context.Context, user string) ([]natter.ReadMark, error) {
	recs, err := s.rdb.HGetAll(ctx, s.key("hidden", user)).Result()
	if err != nil {
		return nil, unavailable("read hidden rooms", err)
	}
	hidden := make([]natter.ReadMark, 0, len(recs))
	for room, v := range recs {
		seqText, epoch, ok := strings.Cut(v, ":")
		seq, perr := strconv.ParseInt(seqText, 10, 64)
		if !ok || perr != nil || seq < 0 {
			return nil, natter.Internal("redis: hidden room", fmt.Errorf("record %q of %s in room %q is not SEQ:EPOCH", v, user, room))
		}
		hidden = append(hidden, natter.ReadMark{Room: room, Epoch: epoch, Seq: seq})
	}
	slices.SortFunc(hidden, func(a, b natter.ReadMark) int { return strings.Compare(a.Room, b.Room) })
	return hidden, nil
}

// Rooms an account muted (natter.ReadMarkStore): a set per account, PREFIX:muted:USER, of room
// names.

// MuteRoom records or forgets that user muted room.
func (s *Store) MuteRoom(ctx context.Context, user, room string, muted bool) error {
	if err := natter.CheckMute(user, room); err != nil {
		return err
	}
	var err error
	if muted {
		if err := s.roomExists(ctx, room); err != nil {
			return err
		}
		err = s.rdb.SAdd(ctx, s.key("muted", user), room).Err()
	} else {
		err = s.rdb.SRem(ctx, s.key("muted", user), room).Err()
	}
	if err != nil {
		return unavailable("mute room", err)
	}
	return nil
}

// MutedRooms returns the rooms user muted, by name.
func (s *Store) MutedRooms(ctx context.Context, user string) ([]string, error) {
	muted, err := s.rdb.SMembers(ctx, s.key("muted", user)).Result()
	if err != nil {
		return nil, unavailable("read muted rooms", err)
	}
	slices.Sort(muted)
	return muted, nil
}
