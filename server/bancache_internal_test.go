package server

import (
	"testing"
	"time"

	"natter"
)

// TestBanCacheDropsStaleReads: bans read from the store before a change was applied (forget) are
// not kept, or a node would hold the old bans until the next change; a read after it is.
func TestBanCacheDropsStaleReads(t *testing.T) {
	var c banCache
	_, gen, ok := c.get("ops")
	if ok {
		t.Fatal("an empty cache knows ops")
	}
	c.forget("ops") // a ban applied while the read was on its way
	c.put("ops", banSet{}, gen)
	if _, _, ok := c.get("ops"); ok {
		t.Fatal("the bans read before the change were kept")
	}
	_, gen, _ = c.get("ops")
	c.put("ops", banSet{"bob": {}}, gen)
	set, _, ok := c.get("ops")
	if _, banned := set["bob"]; !ok || !banned {
		t.Fatalf("the bans read after the change: %v %v, want bob's", set, ok)
	}
	c.forget("")
	if _, _, ok := c.get("ops"); ok {
		t.Fatal("forget(\"\") kept ops's bans")
	}
}

// TestBanEndsByItself: a ban whose end has passed no longer bars its user, with nothing told or
// read again; one still running says until when and why.
func TestBanEndsByItself(t *testing.T) {
	var s Server
	_, gen, _ := s.bans.get("ops")
	s.bans.put("ops", banSet{
		"bob":   {User: "bob", Until: time.Now().Add(-time.Second)},
		"carol": {User: "carol", Until: time.Date(2100, 1, 2, 3, 4, 0, 0, time.UTC), Reason: "spam"},
		"dave":  {User: "dave"},
	}, gen)
	if err := s.checkBanned(t.Context(), "bob", "ops"); err != nil {
		t.Fatalf("bob's ban has ended, yet: %v", err)
	}
	err := s.checkBanned(t.Context(), "carol", "ops")
	if natter.ErrorCode(err) != natter.EFORBIDDEN || natter.ErrorMessage(err) != `carol is banned from posting in room "ops" (spam) until 2100-01-02T03:04:00Z: a moderator may lift the ban` {
		t.Fatalf("carol's running ban: %v", err)
	}
	if err := s.checkBanned(t.Context(), "dave", "ops"); natter.ErrorMessage(err) != `dave is banned from posting in room "ops": a moderator may lift the ban` {
		t.Fatalf("dave's ban for good: %v", err)
	}
}
