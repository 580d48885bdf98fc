package server

import "testing"

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
