package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// Invites (natter.InviteStore). A room's invites are a hash, PREFIX:invites:ROOM, of invite ID to
// inviteRecord as JSON; it goes with the room (roomKeys). The scripts below read and rewrite the
// records with Redis's cjson, so that a use is checked, counted and its account made a member in
// one step.

// inviteRecord is an invite as stored: natter.Invite's fields and its code's hash. Times are
// stamps, not nanoseconds in one number: Lua's numbers are doubles, exact to 2^53 only, and the
// scripts compare expiry times with the clock exactly.
type inviteRecord struct {
	ID        string `json:"id"`
	Room      string `json:"room"`
	CreatedBy string `json:"created_by"`
	CreatedAt stamp  `json:"created_at"`
	ExpiresAt stamp  `json:"expires_at"`
	MaxUses   int    `json:"max_uses"`
	Uses      int    `json:"uses"`
	Hash      string `json:"hash"`
}

// stamp is a time as Unix seconds and nanoseconds (0 to 999999999): both fit a double exactly,
// and cjson writes them back unchanged (it keeps 14 significant digits) for years 1 to 9999.
type stamp [2]int64

func toStamp(t time.Time) stamp { return stamp{t.Unix(), int64(t.Nanosecond())} }
func (s stamp) time() time.Time { return time.Unix(s[0], s[1]).UTC() }

// invite is the record as the room's members see it: without the hash.
func (r inviteRecord) invite() natter.Invite {
	return natter.Invite{ID: r.ID, Room: r.Room, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.time(), ExpiresAt: r.ExpiresAt.time(), MaxUses: r.MaxUses, Uses: r.Uses}
}

// parseInvite reads an inviteRecord.
func parseInvite(v string) (inviteRecord, error) {
	var r inviteRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return inviteRecord{}, natter.Internal("redis: invite record", fmt.Errorf("malformed: %q: %w", v, err))
	}
	return r, nil
}

// inviteLive is the scripts' natter.Invite.Live: live(record, seconds, nanoseconds) reports
// whether the decoded record still lets an account join at that stamp.
const inviteLive = `
local function live(inv, s, ns)
  local e = inv.expires_at
  if not (s < e[1] or (s == e[1] and ns < e[2])) then return false end
  return inv.max_uses == 0 or inv.uses < inv.max_uses
end
`

// createInviteScript stores an invite (natter.InviteStore.CreateInvite) in one step: it drops the
// room's invites that no longer work at the new one's creation, then adds it unless the room
// holds the most live ones it may. KEYS: the rooms hash, the room's invites hash. ARGV: the room,
// the invite's ID, its record, its creation stamp (seconds, nanoseconds), MaxRoomInvites. It
// returns 1, 0 if there is no such room, 2 if the room is full, 3 if a live invite has that ID.
var createInviteScript = redis.NewScript(inviteLive + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local s, ns = tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[2])
local n, taken = 0, false
for i = 1, #all, 2 do
  if live(cjson.decode(all[i + 1]), s, ns) then
    n = n + 1
    if all[i] == ARGV[2] then taken = true end
  else
    redis.call('HDEL', KEYS[2], all[i])
  end
end
if taken then return 3 end
if n >= tonumber(ARGV[6]) then return 2 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`)

// CreateInvite stores inv under hash (natter.InviteStore), dropping the room's invites that no
// longer work at inv.CreatedAt. An empty inv.ID becomes InviteID(hash). Errors: EINVALID (a hash
// too short to name the invite, an ID that is not its name, uses out of range), ENOTFOUND (no
// such room), ECONFLICT (the room holds MaxRoomInvites live invites, or a live invite has the
// same ID: two codes whose hashes begin alike).
func (s *Store) CreateInvite(ctx context.Context, inv natter.Invite, hash string) error {
	if len(hash) < 12 {
		return natter.Errorf(natter.EINVALID, "an invite's code hash is too short to name it: %q", hash)
	}
	if inv.ID == "" {
		inv.ID = natter.InviteID(hash)
	}
	if inv.ID != natter.InviteID(hash) {
		return natter.Errorf(natter.EINVALID, "invite %q is not named by its code's hash (InviteID: %q)", inv.ID, natter.InviteID(hash))
	}
	if inv.MaxUses < 0 || inv.MaxUses > natter.MaxInviteUses || inv.Uses < 0 {
		return natter.Errorf(natter.EINVALID, "an invite is used from 0 to %d times, not %d of %d", natter.MaxInviteUses, inv.Uses, inv.MaxUses)
	}
	rec := inviteRecord{
		ID: inv.ID, Room: inv.Room, CreatedBy: inv.CreatedBy, CreatedAt: toStamp(inv.CreatedAt), ExpiresAt: toStamp(inv.ExpiresAt),
		MaxUses: inv.MaxUses, Uses: inv.Uses, Hash: hash,
	}
	data, _ := json.Marshal(rec)
	n, err := createInviteScript.Run(ctx, s.rdb, []string{s.key("rooms"), s.key("invites", inv.Room)},
		inv.Room, inv.ID, data, rec.CreatedAt[0], rec.CreatedAt[1], natter.MaxRoomInvites).Int()
	if err != nil {
		return unavailable("create invite", err)
	}
	switch n {
	case 0:
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", inv.Room)
	case 2:
		return natter.Errorf(natter.ECONFLICT, "room %q holds %d invites, the most it may: revoke one first", inv.Room, natter.MaxRoomInvites)
	case 3:
		return natter.Errorf(natter.ECONFLICT, "room %q has a live invite %q already: make another code", inv.Room, inv.ID)
	}
	return nil
}

// Invites lists the room's invites that still work at now, the newest first (the ID breaks a
// tie); empty, not nil, for none. Those that no longer work stay in the hash, read past, until
// the next CreateInvite drops them. ENOTFOUND if there is no such room.
func (s *Store) Invites(ctx context.Context, room string, now time.Time) ([]natter.Invite, error) {
	var existsCmd *redis.BoolCmd
	var recsCmd *redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		existsCmd = p.HExists(ctx, s.key("rooms"), room)
		recsCmd = p.HGetAll(ctx, s.key("invites", room))
		return nil
	}); err != nil {
		return nil, unavailable("read invites", err)
	}
	if !existsCmd.Val() {
		return nil, natter.Errorf(natter.ENOTFOUND, "no room named %q", room)
	}
	invites := make([]natter.Invite, 0, len(recsCmd.Val()))
	for _, v := range recsCmd.Val() {
		rec, err := parseInvite(v)
		if err != nil {
			return nil, err
		}
		if inv := rec.invite(); inv.Live(now) {
			invites = append(invites, inv)
		}
	}
	slices.SortFunc(invites, func(a, b natter.Invite) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return invites, nil
}

// revokeInviteScript deletes an invite and returns its record (nil if there is none), in one
// step. KEYS: the room's invites hash. ARGV: the invite's ID.
var revokeInviteScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v`)

// RevokeInvite deletes the room's invite id and returns it (natter.InviteStore), whether it
// still works or not: one that is stored is there to revoke. ENOTFOUND if there is none, as in a
// room that does not exist (it has no invites).
func (s *Store) RevokeInvite(ctx context.Context, room, id string) (natter.Invite, error) {
	v, err := revokeInviteScript.Run(ctx, s.rdb, []string{s.key("invites", room)}, id).Text()
	if errors.Is(err, redis.Nil) {
		return natter.Invite{}, natter.Errorf(natter.ENOTFOUND, "room %q has no invite %q", room, id)
	}
	if err != nil {
		return natter.Invite{}, unavailable("revoke invite", err)
	}
	rec, err := parseInvite(v)
	if err != nil {
		return natter.Invite{}, err
	}
	return rec.invite(), nil
}

// useInviteScript lets an account join a room by an invite (natter.InviteStore.UseInvite) in one
// step, so that two uses of an invite's last use can't both join. KEYS: the rooms hash, the
// room's invites hash, its members set. ARGV: the room, the invite's ID, the code's hash, the
// user, now (seconds, nanoseconds). It returns {"joined", record} with the use counted,
// {"member", record} when the user was a member already (no use counted), {"noroom"}, or
// {"none"} when no invite works with that hash.
var useInviteScript = redis.NewScript(inviteLive + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'noroom'} end
local v = redis.call('HGET', KEYS[2], ARGV[2])
if not v then return {'none'} end
local inv = cjson.decode(v)
if inv.hash ~= ARGV[3] or not live(inv, tonumber(ARGV[5]), tonumber(ARGV[6])) then return {'none'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return {'member', v} end
redis.call('SADD', KEYS[3], ARGV[4])
inv.uses = inv.uses + 1
v = cjson.encode(inv)
redis.call('HSET', KEYS[2], ARGV[2], v)
return {'joined', v}`)

// UseInvite makes user a member of room by the invite whose code hashes to hash
// (natter.InviteStore), in one script: the invite must be the room's, match the whole hash and
// still work at now; it counts one use more unless user was a member already. It returns the
// invite, its uses counted. ENOTFOUND when the room or the invite does not exist, or the invite
// no longer works: the message says no more, so a guessed code learns nothing.
func (s *Store) UseInvite(ctx context.Context, room, hash, user string, now time.Time) (natter.Invite, error) {
	none := natter.Errorf(natter.ENOTFOUND, "no invite to room %q works with that code: it may have expired, been used up or revoked", room)
	if len(hash) < 12 {
		return natter.Invite{}, none
	}
	at := toStamp(now)
	res, err := useInviteScript.Run(ctx, s.rdb, []string{s.key("rooms"), s.key("invites", room), s.key("members", room)},
		room, natter.InviteID(hash), hash, user, at[0], at[1]).StringSlice()
	if err != nil {
		return natter.Invite{}, unavailable("use invite", err)
	}
	switch {
	case len(res) == 1 && res[0] == "noroom":
		return natter.Invite{}, natter.Errorf(natter.ENOTFOUND, "no room named %q", room)
	case len(res) == 1 && res[0] == "none":
		return natter.Invite{}, none
	case len(res) == 2 && (res[0] == "joined" || res[0] == "member"):
		rec, err := parseInvite(res[1])
		if err != nil {
			return natter.Invite{}, err
		}
		return rec.invite(), nil
	}
	return natter.Invite{}, natter.Internal("redis: use invite", fmt.Errorf("unexpected answer %q", res))
}
