package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

type inviteJSON struct {
	ID        string    `json:"id"`
	Room      string    `json:"room"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	Code      string    `json:"code"`
	Link      string    `json:"link"`
}

func (ts *testServer) makeInvite(t *testing.T, tok, room string, body map[string]any) inviteJSON {
	t.Helper()
	r := ts.do("POST", "/api/rooms/"+room+"/invites", tok, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("make an invite to %s: %d %s", room, r.Status, r.Raw)
	}
	var got struct{ Invite inviteJSON }
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	return got.Invite
}

func (ts *testServer) invites(t *testing.T, tok, room string) []inviteJSON {
	t.Helper()
	r := ts.do("GET", "/api/rooms/"+room+"/invites", tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list %s's invites: %d %s", room, r.Status, r.Raw)
	}
	var got struct{ Invites []inviteJSON }
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	return got.Invites
}

// TestInvites: a member of a private room makes an invite link; an account that joins with its
// code becomes a member (again uses none of it), while a wrong code, a guest, a used-up,
// revoked or deleted room's invite joins nobody. Bad terms are refused and store nothing; only
// members see a room's invites, and only an invite's maker or a moderator revokes it.
func TestInvites(t *testing.T) {
	ts := startServer(t)
	carol, bob, dan, eve, gus := ts.account("carol"), ts.account("bob"), ts.account("dan"), ts.account("eve"), ts.signIn("gus")
	if r := ts.do("POST", "/api/rooms", carol, map[string]any{"name": "club", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(carol, "club", "members only")

	for _, bad := range []map[string]any{{"expires_in": "1m"}, {"expires_in": "31d"}, {"expires_in": "soon"}, {"max_uses": -1}, {"max_uses": 10001}} {
		checkError(t, ts.do("POST", "/api/rooms/club/invites", carol, bad), http.StatusBadRequest, "invalid")
	}
	checkError(t, ts.do("POST", "/api/rooms/lobby/invites", carol, map[string]any{}), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("POST", "/api/rooms/club/invites", bob, map[string]any{}), http.StatusNotFound, "not_found")
	checkError(t, ts.do("GET", "/api/rooms/club/invites", bob, nil), http.StatusNotFound, "not_found")
	if got := ts.invites(t, carol, "club"); len(got) != 0 {
		t.Fatalf("refused invites were stored: %+v", got)
	}

	before := time.Now()
	week := ts.makeInvite(t, carol, "club", map[string]any{})
	if week.Code == "" || week.Link != "/join/club/"+week.Code || week.CreatedBy != "carol" || week.MaxUses != 0 || week.Uses != 0 ||
		week.ExpiresAt.Before(before.Add(7*24*time.Hour-time.Minute)) || week.ExpiresAt.After(time.Now().Add(7*24*time.Hour+time.Minute)) {
		t.Fatalf("a week's invite: %+v", week)
	}
	if list := ts.invites(t, carol, "club"); len(list) != 1 || list[0].ID != week.ID || list[0].Code != "" {
		t.Fatalf("carol lists %+v, want the week's invite, without its code", list)
	}

	join := func(tok, room, code string) apiResponse {
		t.Helper()
		return ts.do("POST", "/api/rooms/"+room+"/join", tok, map[string]any{"code": code})
	}
	checkError(t, join(bob, "club", week.Code+"x"), http.StatusNotFound, "not_found")
	checkError(t, join(bob, "club", ""), http.StatusBadRequest, "invalid")
	checkError(t, join(bob, "nowhere", week.Code), http.StatusNotFound, "not_found")
	checkError(t, join(gus, "club", week.Code), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("GET", "/api/rooms/club", bob, nil), http.StatusNotFound, "not_found")
	r := join(bob, "club", week.Code)
	if r.Status != http.StatusOK || r.Body["room"].(map[string]any)["name"] != "club" {
		t.Fatalf("bob joins: %d %s", r.Status, r.Raw)
	}
	if !ts.listed(t, bob, "club") {
		t.Fatal("bob joined, and his room list leaves the room out")
	}
	if page := ts.read(bob, "/api/rooms/club/messages?after=0"); len(page.Messages) != 1 {
		t.Fatalf("bob reads %+v", page)
	}
	ts.mustPost(bob, "club", "thanks for the link")
	if r := join(bob, "club", week.Code); r.Status != http.StatusOK {
		t.Fatalf("bob joins again: %d %s", r.Status, r.Raw)
	}
	if list := ts.invites(t, bob, "club"); len(list) != 1 || list[0].Uses != 1 {
		t.Fatalf("after bob joined twice, the invites are %+v, want one use", list)
	}

	// One use: dan gets in, eve does not.
	once := ts.makeInvite(t, bob, "club", map[string]any{"expires_in": "1h", "max_uses": 1})
	if once.MaxUses != 1 || once.ExpiresAt.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("a one-use hour's invite: %+v", once)
	}
	if r := join(dan, "club", once.Code); r.Status != http.StatusOK {
		t.Fatalf("dan joins: %d %s", r.Status, r.Raw)
	}
	checkError(t, join(eve, "club", once.Code), http.StatusNotFound, "not_found")
	if list := ts.invites(t, carol, "club"); len(list) != 1 || list[0].ID != week.ID {
		t.Fatalf("after the one-use invite was used, the list is %+v, want the week's alone", list)
	}

	// Revoking: the maker or a moderator.
	checkError(t, ts.do("DELETE", "/api/rooms/club/invites/"+week.ID, bob, nil), http.StatusForbidden, "forbidden")
	mine := ts.makeInvite(t, bob, "club", map[string]any{})
	if r := ts.do("DELETE", "/api/rooms/club/invites/"+mine.ID, bob, nil); r.Status != http.StatusNoContent {
		t.Fatalf("bob revokes his own: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("DELETE", "/api/rooms/club/invites/"+week.ID, carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("carol revokes hers: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.do("DELETE", "/api/rooms/club/invites/"+week.ID, carol, nil), http.StatusNotFound, "not_found")
	checkError(t, join(eve, "club", week.Code), http.StatusNotFound, "not_found")
	checkError(t, join(eve, "club", mine.Code), http.StatusNotFound, "not_found")
	var members struct{ Members []string }
	json.Unmarshal(ts.do("GET", "/api/rooms/club/members", carol, nil).Raw, &members)
	if !slices.Equal(members.Members, []string{"bob", "carol", "dan"}) {
		t.Fatalf("members %v, want bob, carol, dan", members.Members)
	}

	// A direct conversation keeps its two.
	r = ts.do("POST", "/api/dms", carol, map[string]any{"user": "dan"})
	dm := r.Body["room"].(map[string]any)["name"].(string)
	checkError(t, ts.do("POST", "/api/rooms/"+dm+"/invites", carol, map[string]any{}), http.StatusForbidden, "forbidden")

	// A deleted room's invites go with it.
	last := ts.makeInvite(t, carol, "club", map[string]any{})
	if r := ts.do("DELETE", "/api/rooms/club", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	checkError(t, join(eve, "club", last.Code), http.StatusNotFound, "not_found")
}

// TestInvitePage: an invite's link asks a signed-in account whether to join (opening it joins
// nobody), sends a member on to the room, and a signed-out browser to sign in first.
func TestInvitePage(t *testing.T) {
	ts := startServer(t)
	carol, bob := ts.account("carol"), ts.account("bob")
	if r := ts.do("POST", "/api/rooms", carol, map[string]any{"name": "club", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	inv := ts.makeInvite(t, carol, "club", map[string]any{})
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(tok, path string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if tok != "" {
			req.AddCookie(&http.Cookie{Name: "natter_session", Value: tok})
		}
		res, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}
	code, _, html := page(bob, inv.Link)
	if code != http.StatusOK || !strings.Contains(html, `id="join-room"`) || !strings.Contains(html, `data-code="`+inv.Code+`"`) {
		t.Fatalf("bob's join page: %d %s", code, html)
	}
	if list := ts.invites(t, carol, "club"); list[0].Uses != 0 {
		t.Fatalf("opening the link used the invite: %+v", list)
	}
	checkError(t, ts.do("GET", "/api/rooms/club", bob, nil), http.StatusNotFound, "not_found")
	if code, loc, _ := page(carol, inv.Link); code != http.StatusSeeOther || loc != "/rooms/club" {
		t.Fatalf("carol, a member, is sent to %d %q, want 303 /rooms/club", code, loc)
	}
	if code, loc, _ := page("", inv.Link); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") {
		t.Fatalf("a signed-out browser is sent to %d %q, want the sign-in page", code, loc)
	}
	// A link that no longer works (revoked; a wrong code; no such room) says so, with no Join.
	gone := func(path, what string) {
		t.Helper()
		code, _, html := page(bob, path)
		if code != http.StatusOK || !strings.Contains(html, `id="join-gone"`) || strings.Contains(html, `id="join-room"`) {
			t.Fatalf("bob's page of %s: %d %s", what, code, html)
		}
	}
	gone("/join/club/not-a-code", "a wrong code")
	gone("/join/nowhere/"+inv.Code, "a room that does not exist")
	if r := ts.do("DELETE", "/api/rooms/club/invites/"+inv.ID, carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	gone(inv.Link, "a revoked invite")
}
