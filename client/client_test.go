package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
	"natter/app"
	"natter/client"
	"natter/server"
)

// guard bounds every wait in these tests. It is a failure guard, never a measurement: a correct
// client and server finish long before it.
const guard = 30 * time.Second

// natterServer is a whole natter (SQLite in a temp dir, hub, HTTP) on a random loopback port.
type natterServer struct {
	t    testing.TB
	cfg  app.Config
	main *app.Main
	URL  string
}

// startNatter starts natter with guests allowed and no send rate limit.
func startNatter(t testing.TB) *natterServer {
	t.Helper()
	ns := &natterServer{t: t, cfg: app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:    "NORMAL",
		Server:  server.Config{Guests: true, SendRate: -1},
	}}
	ns.open()
	t.Cleanup(ns.close)
	return ns
}

func (ns *natterServer) open() {
	ns.t.Helper()
	m, err := app.Open(context.Background(), ns.cfg)
	if err != nil {
		ns.t.Fatalf("start natter: %v", err)
	}
	ns.main, ns.URL = m, m.URL()
	ns.cfg.Addr = m.Addr().String() // a restart reuses the port
}

func (ns *natterServer) close() {
	if ns.main == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := ns.main.Close(ctx); err != nil {
		ns.t.Errorf("close natter: %v", err)
	}
	ns.main = nil
}

// restart stops natter and starts it again on the same port and data.
func (ns *natterServer) restart() {
	ns.t.Helper()
	ns.close()
	ns.open()
}

// guest returns a client signed in as a guest. Short backoffs keep reconnect tests quick.
// account registers name (password "NAME's password") and returns a client signed in as it.
func (ns *natterServer) account(t testing.TB, name string) *client.Client {
	t.Helper()
	c := client.New(ns.URL)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.Register(ctx, name, name+"'s password"); err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(ctx, name, name+"'s password"); err != nil {
		t.Fatal(err)
	}
	return c
}

func (ns *natterServer) guest(t testing.TB, name string) *client.Client {
	t.Helper()
	c := client.New(ns.URL, client.WithRetry(0, 5*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.SignIn(ctx, name, ""); err != nil {
		t.Fatalf("sign in %s: %v", name, err)
	}
	return c
}

// testCtx is a context that the guard ends, so that a hung call fails the test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// wantCode checks that err is a *natter.Error with code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ne *natter.Error
	if !errors.As(err, &ne) || ne.Code != code {
		t.Fatalf("error = %v; want a *natter.Error with code %s", err, code)
	}
}

func TestAccountsRoomsAndSignOut(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	c := client.New(ns.URL)
	if err := c.Register(ctx, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Register(ctx, "alice", "correct horse"), natter.ECONFLICT)
	wantCode(t, c.SignIn(ctx, "alice", "wrong password"), natter.EUNAUTHORIZED)
	if _, err := c.Rooms(ctx); natter.ErrorCode(err) != natter.EUNAUTHORIZED {
		t.Fatalf("Rooms before sign-in: %v; want unauthorized", err)
	}
	if err := c.SignIn(ctx, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if c.Token() == "" || c.User().Name != "alice" {
		t.Fatalf("after SignIn: token %q, user %+v", c.Token(), c.User())
	}

	room, err := c.CreateRoom(ctx, "ops", "Operations")
	if err != nil {
		t.Fatal(err)
	}
	if room.Name != "ops" || room.Title != "Operations" {
		t.Fatalf("created %+v", room)
	}
	_, err = c.CreateRoom(ctx, "ops", "Again")
	wantCode(t, err, natter.ECONFLICT)
	rooms, err := c.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rooms {
		names = append(names, r.Name)
	}
	if !slices.Contains(names, "lobby") || !slices.Contains(names, "ops") {
		t.Fatalf("rooms = %v", names)
	}

	// A second client reuses the token.
	other := client.New(ns.URL, client.WithToken(c.Token()))
	if _, err := other.Rooms(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SignOut(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Token() != "" {
		t.Fatalf("token kept after SignOut")
	}
	_, err = other.Rooms(ctx)
	wantCode(t, err, natter.EUNAUTHORIZED)
}

// TestChangePasswordAndSignOutEverywhere: the account calls end the other sessions, or all of
// them, and a guest is refused.
func TestChangePasswordAndSignOutEverywhere(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	a := client.New(ns.URL)
	if err := a.Register(ctx, "carol", "first password"); err != nil {
		t.Fatal(err)
	}
	if err := a.SignIn(ctx, "carol", "first password"); err != nil {
		t.Fatal(err)
	}
	b := client.New(ns.URL)
	if err := b.SignIn(ctx, "carol", "first password"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.ChangePassword(ctx, "wrong", "second password"), natter.EFORBIDDEN)
	wantCode(t, a.ChangePassword(ctx, "first password", "x"), natter.EINVALID)
	if err := a.ChangePassword(ctx, "first password", "second password"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rooms(ctx); natter.ErrorCode(err) != natter.EUNAUTHORIZED {
		t.Fatalf("the other session after the change: %v; want unauthorized", err)
	}
	if _, err := a.Rooms(ctx); err != nil {
		t.Fatalf("the session that changed the password: %v", err)
	}
	if err := b.SignIn(ctx, "carol", "second password"); err != nil {
		t.Fatal(err)
	}
	if err := a.SignOutEverywhere(ctx); err != nil || a.Token() != "" {
		t.Fatalf("SignOutEverywhere: %v, token %q", err, a.Token())
	}
	if _, err := b.Rooms(ctx); natter.ErrorCode(err) != natter.EUNAUTHORIZED {
		t.Fatalf("another session after signing out everywhere: %v; want unauthorized", err)
	}
	g := client.New(ns.URL)
	if err := g.SignIn(ctx, "gus", ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, g.SignOutEverywhere(ctx), natter.EFORBIDDEN)
	wantCode(t, g.ChangePassword(ctx, "", "any password"), natter.EFORBIDDEN)
	wantCode(t, g.DeleteAccount(ctx, "", false), natter.EFORBIDDEN)

	// Deleting the account: the password is asked for, then the name is gone for good.
	if err := b.SignIn(ctx, "carol", "second password"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.DeleteAccount(ctx, "wrong", true), natter.EFORBIDDEN)
	if err := b.DeleteAccount(ctx, "second password", true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.SignIn(ctx, "carol", "second password"), natter.EFORBIDDEN)
	wantCode(t, b.Register(ctx, "carol", "third password"), natter.ECONFLICT)
}

// TestMarkReadAndUnread: MarkRead moves the account's mark, Unread counts past it in each room
// the account has marked, the other account's mark is its own, and a guest is refused.
func TestMarkReadAndUnread(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	a := client.New(ns.URL)
	if err := a.Register(ctx, "dora", "dora's password"); err != nil {
		t.Fatal(err)
	}
	if err := a.SignIn(ctx, "dora", "dora's password"); err != nil {
		t.Fatal(err)
	}
	// Others' messages: one's own move one's mark (the server's rule), so they are never unread.
	g := ns.guest(t, "gil")
	var last natter.Message
	for _, body := range []string{"a", "b", "c"} {
		m, err := g.Send(ctx, "lobby", body)
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	rooms, err := a.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	epoch := rooms[0].Epoch
	if u, err := a.Unread(ctx); err != nil || len(u) != 0 {
		t.Fatalf("Unread before any mark: %v, %v; want none", u, err)
	}
	if err := a.MarkRead(ctx, "lobby", epoch, 1); err != nil {
		t.Fatal(err)
	}
	if u, err := a.Unread(ctx); err != nil || len(u) != 1 || u["lobby"] != 2 {
		t.Fatalf("Unread after marking 1 of 3: %v, %v; want lobby: 2", u, err)
	}
	wantCode(t, a.MarkRead(ctx, "lobby", "another epoch", 1), natter.ECONFLICT)
	wantCode(t, a.MarkRead(ctx, "lobby", epoch, last.Seq+1), natter.EINVALID)
	if err := a.MarkRead(ctx, "lobby", epoch, last.Seq); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.Unread(ctx); u["lobby"] != 0 {
		t.Fatalf("Unread after marking the last: %v", u)
	}
	// Over a WebSocket: no answer when stored, an error frame with ref "read" when refused.
	if _, err := g.Send(ctx, "lobby", "d"); err != nil {
		t.Fatal(err)
	}
	w, err := a.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.MarkRead(ctx, "lobby", epoch, last.Seq+1); err != nil {
		t.Fatal(err)
	}
	if err := w.MarkRead(ctx, "lobby", "another epoch", 1); err != nil {
		t.Fatal(err)
	}
	if f, err := w.ReadFrame(ctx); err != nil || f.Type != "error" || f.Ref != "read" || f.Code != natter.ECONFLICT {
		t.Fatalf("a refused read frame: %+v, %v", f, err)
	}
	if u, _ := a.Unread(ctx); u["lobby"] != 0 {
		t.Fatalf("Unread after marking over the WebSocket: %v", u)
	}
	wantCode(t, g.MarkRead(ctx, "lobby", epoch, 1), natter.EFORBIDDEN)
	if u, err := g.Unread(ctx); err != nil || len(u) != 0 {
		t.Fatalf("a guest's Unread: %v, %v", u, err)
	}
}

// TestTyping: a notice sent over a WebSocket, or over HTTP, reaches another subscriber as a
// typing frame naming its user; typing in a room that does not exist is ENOTFOUND.
func TestTyping(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	a, b, c := ns.guest(t, "ann"), ns.guest(t, "ben"), ns.guest(t, "cy")
	conns := make(map[string]*client.WSConn)
	for name, cl := range map[string]*client.Client{"ann": a, "ben": b} {
		w, err := cl.DialWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		if err := w.Subscribe(ctx, "lobby", -1); err != nil {
			t.Fatal(err)
		}
		for f, err := w.ReadFrame(ctx); f.Type != "presence"; f, err = w.ReadFrame(ctx) {
			if err != nil {
				t.Fatal(err)
			}
		}
		conns[name] = w
	}
	nextTyping := func() client.Frame {
		t.Helper()
		for {
			f, err := conns["ann"].ReadFrame(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == "typing" {
				return f
			}
		}
	}
	if err := conns["ben"].Typing(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if f := nextTyping(); f.User != "ben" || f.Room != "lobby" {
		t.Fatalf("typing frame %+v, want ben in the lobby", f)
	}
	if err := c.Typing(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if f := nextTyping(); f.User != "cy" {
		t.Fatalf("typing frame %+v, want cy", f)
	}
	wantCode(t, c.Typing(ctx, "nowhere"), natter.ENOTFOUND)
}

// TestEditAndDelete: Edit and Delete append changes of one's own message; another's, one that is
// not there, or any by a guest, is refused.
func TestEditAndDelete(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	a, b := ns.account(t, "ann"), ns.account(t, "ben")
	m, err := a.Send(ctx, "lobby", "helo")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, func() error { _, err := b.Edit(ctx, "lobby", m.Seq, "mine now"); return err }(), natter.EFORBIDDEN)
	wantCode(t, func() error { _, err := a.Edit(ctx, "lobby", 99, "x"); return err }(), natter.ENOTFOUND)
	e, err := a.Edit(ctx, "lobby", m.Seq, "hello")
	if err != nil || e.Kind != natter.KindEdit || e.Target != m.Seq || e.Body != "hello" {
		t.Fatalf("Edit: %+v, %v", e, err)
	}
	if orig, edits, err := b.Edits(ctx, "lobby", m.Seq); err != nil || orig.Body != "helo" || len(edits) != 1 || edits[0].Body != "hello" {
		t.Fatalf("Edits: %+v, %+v, %v", orig, edits, err)
	}
	wantCode(t, func() error { _, _, err := b.Edits(ctx, "lobby", e.Seq); return err }(), natter.EINVALID)
	d, err := a.Delete(ctx, "lobby", m.Seq)
	if err != nil || d.Kind != natter.KindDelete || d.Target != m.Seq || d.Seq != e.Seq+1 {
		t.Fatalf("Delete: %+v, %v", d, err)
	}
	g := ns.guest(t, "gil")
	mine, err := g.Send(ctx, "lobby", "a guest's")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, func() error { _, err := g.Delete(ctx, "lobby", mine.Seq); return err }(), natter.EFORBIDDEN)
}

func TestSearch(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	c := ns.guest(t, "sam")
	for _, body := range []string{"Lunch at noon?", "no", "lunch moved"} {
		if _, err := c.Send(ctx, "lobby", body); err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.Search(ctx, "lobby", "lunch", 0, 0)
	if err != nil || p.Room != "lobby" || len(p.Messages) != 2 || p.Messages[0].Seq != 3 || p.Messages[1].Body != "Lunch at noon?" || p.Scanned != 3 || p.Before != 0 {
		t.Fatalf("Search lunch: %+v, %v", p, err)
	}
	p, err = c.Search(ctx, "lobby", "lunch from:sam", 0, 1)
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Seq != 3 || p.Before != 3 {
		t.Fatalf("Search with limit 1: %+v, %v", p, err)
	}
	p, err = c.Search(ctx, "lobby", "lunch", p.Before, 1)
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Seq != 1 {
		t.Fatalf("Search from before 3: %+v, %v", p, err)
	}
	r, err := c.Reply(ctx, "lobby", 1, "lunch at one")
	if err != nil || r.ReplyTo != 1 || r.Seq != 4 {
		t.Fatalf("Reply: %+v, %v", r, err)
	}
	_, err = c.Reply(ctx, "lobby", 99, "to nothing")
	wantCode(t, err, natter.ENOTFOUND)
	on, err := c.React(ctx, "lobby", 1, "🍕", false)
	if err != nil || on.Kind != natter.KindReact || on.Target != 1 || on.Body != "🍕" {
		t.Fatalf("React: %+v, %v", on, err)
	}
	off, err := c.React(ctx, "lobby", 1, "🍕", true)
	if err != nil || off.Kind != natter.KindUnreact || off.Seq != on.Seq+1 {
		t.Fatalf("React off: %+v, %v", off, err)
	}
	_, err = c.React(ctx, "lobby", 1, "no spaces", false)
	wantCode(t, err, natter.EINVALID)
	_, err = c.Search(ctx, "lobby", "  ", 0, 0)
	wantCode(t, err, natter.EINVALID)
	_, err = c.Search(ctx, "nowhere", "x", 0, 0)
	wantCode(t, err, natter.ENOTFOUND)
}

func TestPrivateRoom(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	ann, ben := ns.account(t, "ann"), ns.account(t, "ben")
	r, err := ann.CreatePrivateRoom(ctx, "plans", "Plans")
	if err != nil || !r.Private {
		t.Fatalf("CreatePrivateRoom: %+v, %v", r, err)
	}
	_, err = ben.Messages(ctx, "plans", client.Query{})
	wantCode(t, err, natter.ENOTFOUND)
	wantCode(t, ben.AddMember(ctx, "plans", "ben"), natter.ENOTFOUND)
	if err := ann.AddMember(ctx, "plans", "ben"); err != nil {
		t.Fatal(err)
	}
	if m, err := ben.Members(ctx, "plans"); err != nil || len(m) != 2 || m[0] != "ann" || m[1] != "ben" {
		t.Fatalf("Members: %v, %v", m, err)
	}
	if _, err := ben.Send(ctx, "plans", "in"); err != nil {
		t.Fatal(err)
	}
	if err := ben.RemoveMember(ctx, "plans", "ben"); err != nil {
		t.Fatal(err)
	}
	_, err = ben.Send(ctx, "plans", "out")
	wantCode(t, err, natter.ENOTFOUND)
	_, err = ns.guest(t, "gil").CreatePrivateRoom(ctx, "guests", "")
	wantCode(t, err, natter.EFORBIDDEN)
}

func TestInvites(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	ann, ben, cy := ns.account(t, "ann"), ns.account(t, "ben"), ns.account(t, "cy")
	if _, err := ann.CreatePrivateRoom(ctx, "plans", ""); err != nil {
		t.Fatal(err)
	}
	_, err := ann.CreateInvite(ctx, "plans", time.Minute, 0)
	wantCode(t, err, natter.EINVALID)
	inv, err := ann.CreateInvite(ctx, "plans", 2*time.Hour, 1)
	if err != nil || inv.Code == "" || inv.Link != "/join/plans/"+inv.Code || inv.MaxUses != 1 || time.Until(inv.ExpiresAt) > 2*time.Hour {
		t.Fatalf("CreateInvite: %+v, %v", inv, err)
	}
	_, err = ben.Join(ctx, "plans", "wrong")
	wantCode(t, err, natter.ENOTFOUND)
	if r, err := ben.Join(ctx, "plans", inv.Code); err != nil || r.Name != "plans" {
		t.Fatalf("Join: %+v, %v", r, err)
	}
	if _, err := ben.Send(ctx, "plans", "in by the link"); err != nil {
		t.Fatal(err)
	}
	_, err = cy.Join(ctx, "plans", inv.Code)
	wantCode(t, err, natter.ENOTFOUND) // used up
	open, err := ben.CreateInvite(ctx, "plans", 0, 0)
	if err != nil || time.Until(open.ExpiresAt) < natter.DefaultInviteTTL-time.Minute {
		t.Fatalf("CreateInvite with the defaults: %+v, %v", open, err)
	}
	if list, err := ann.Invites(ctx, "plans"); err != nil || len(list) != 1 || list[0].ID != open.ID || list[0].CreatedBy != "ben" {
		t.Fatalf("Invites: %+v, %v", list, err)
	}
	if err := ann.RevokeInvite(ctx, "plans", open.ID); err != nil {
		t.Fatal(err)
	}
	_, err = cy.Join(ctx, "plans", open.Code)
	wantCode(t, err, natter.ENOTFOUND)
}

func TestMute(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	ann := ns.account(t, "ann")
	if err := ann.Mute(ctx, "lobby", true); err != nil {
		t.Fatal(err)
	}
	if m, err := ann.MutedRooms(ctx); err != nil || len(m) != 1 || m[0] != "lobby" {
		t.Fatalf("MutedRooms after muting: %v, %v", m, err)
	}
	if err := ann.Mute(ctx, "lobby", false); err != nil {
		t.Fatal(err)
	}
	if m, err := ann.MutedRooms(ctx); err != nil || len(m) != 0 {
		t.Fatalf("MutedRooms after unmuting: %v, %v", m, err)
	}
	wantCode(t, ann.Mute(ctx, "nowhere", true), natter.ENOTFOUND)
	wantCode(t, ns.guest(t, "gil").Mute(ctx, "lobby", true), natter.EFORBIDDEN)
}

func TestDirect(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	ann, ben, cy := ns.account(t, "ann"), ns.account(t, "ben"), ns.account(t, "cy")
	r, err := ben.Direct(ctx, "ann")
	if err != nil || r.Name != natter.DirectRoomName("ann", "ben") || !r.Private || len(r.Direct) != 2 || r.Direct[0] != "ann" || r.Direct[1] != "ben" {
		t.Fatalf("Direct: %+v, %v", r, err)
	}
	if _, err := ben.Send(ctx, r.Name, "psst"); err != nil {
		t.Fatal(err)
	}
	again, err := ann.Direct(ctx, "ben")
	if err != nil || again.Name != r.Name || again.Epoch != r.Epoch {
		t.Fatalf("ann's Direct: %+v, %v; want %+v", again, err, r)
	}
	if page, err := ann.Messages(ctx, r.Name, client.Query{}); err != nil || len(page.Messages) != 1 || page.Messages[0].Body != "psst" {
		t.Fatalf("ann reads: %+v, %v", page, err)
	}
	_, err = cy.Messages(ctx, r.Name, client.Query{})
	wantCode(t, err, natter.ENOTFOUND)
	_, err = ann.Direct(ctx, "nobody")
	wantCode(t, err, natter.ENOTFOUND)
	_, err = ann.Direct(ctx, "ann")
	wantCode(t, err, natter.EINVALID)
	_, err = ns.guest(t, "gil").Direct(ctx, "ann")
	wantCode(t, err, natter.EFORBIDDEN)

	// Either account pins in the conversation; Pins lists it with the message.
	if _, err := ann.Pin(ctx, r.Name, 1, false); err != nil {
		t.Fatal(err)
	}
	pins, err := ben.Pins(ctx, r.Name)
	if err != nil || len(pins) != 1 || pins[0].Seq != 1 || pins[0].By != "ann" || pins[0].Message.Body != "psst" {
		t.Fatalf("Pins: %+v, %v", pins, err)
	}
	if _, err := ben.Pin(ctx, r.Name, 1, true); err != nil {
		t.Fatal(err)
	}
	_, err = ben.Pin(ctx, r.Name, 1, true)
	wantCode(t, err, natter.ECONFLICT)
	if pins, err := ann.Pins(ctx, r.Name); err != nil || len(pins) != 0 {
		t.Fatalf("Pins after the unpin: %+v, %v", pins, err)
	}
}

// TestRenameRoom: the room's creator renames it, and a WebSocket subscriber hears the new title.
func TestRenameRoom(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	ann, ben := ns.account(t, "ann"), ns.account(t, "ben")
	if _, err := ann.CreateRoom(ctx, "ops", "Ops"); err != nil {
		t.Fatal(err)
	}
	w, err := ben.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Subscribe(ctx, "ops", -1); err != nil {
		t.Fatal(err)
	}
	for f, err := w.ReadFrame(ctx); f.Type != "presence"; f, err = w.ReadFrame(ctx) {
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := ann.RenameRoom(ctx, "ops", "Operations")
	if err != nil || r.Title != "Operations" {
		t.Fatalf("RenameRoom: %+v, %v", r, err)
	}
	for {
		f, err := w.ReadFrame(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "room" {
			if f.Room != "ops" || f.Title != "Operations" {
				t.Fatalf("room frame %+v", f)
			}
			break
		}
	}
	_, err = ben.RenameRoom(ctx, "ops", "Ben's")
	wantCode(t, err, natter.EFORBIDDEN)
	if r, err := ann.SetRoomTopic(ctx, "ops", "deploys on Tuesdays"); err != nil || r.Topic != "deploys on Tuesdays" || r.Title != "Operations" {
		t.Fatalf("SetRoomTopic: %+v, %v", r, err)
	}
	for {
		f, err := w.ReadFrame(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "room" {
			if f.Topic != "deploys on Tuesdays" || f.Title != "Operations" {
				t.Fatalf("room frame %+v", f)
			}
			break
		}
	}
	_, err = ben.SetRoomTopic(ctx, "ops", "Ben's")
	wantCode(t, err, natter.EFORBIDDEN)
}

func TestSendIsIdempotent(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	c := ns.guest(t, "bob")
	first, created, err := c.SendWithClientID(ctx, "lobby", "hello", "c-fixed")
	if err != nil || !created {
		t.Fatalf("first send: %+v created=%v err=%v", first, created, err)
	}
	again, created, err := c.SendWithClientID(ctx, "lobby", "hello", "c-fixed")
	if err != nil || created || again.Seq != first.Seq || again.ID != first.ID {
		t.Fatalf("repeat send: %+v created=%v err=%v; want the original %+v", again, created, err, first)
	}
	m, err := c.Send(ctx, "lobby", "second")
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != first.Seq+1 || m.Author != "bob" || m.Body != "second" || !strings.HasPrefix(m.ClientID, "c-") {
		t.Fatalf("Send = %+v", m)
	}
	_, err = c.Send(ctx, "no-such-room", "x")
	wantCode(t, err, natter.ENOTFOUND)
	_, err = c.Send(ctx, "lobby", "")
	wantCode(t, err, natter.EINVALID)
}

func TestMessagesQueries(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	c := ns.guest(t, "carol")
	for i := 1; i <= 5; i++ {
		if _, err := c.Send(ctx, "lobby", fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(p client.Page) []int64 {
		var s []int64
		for _, m := range p.Messages {
			s = append(s, m.Seq)
		}
		return s
	}
	tests := []struct {
		name string
		q    client.Query
		want []int64
	}{
		{"from start", client.Query{}, []int64{1, 2, 3, 4, 5}},
		{"after", client.Query{After: 2}, []int64{3, 4, 5}},
		{"after with limit", client.Query{After: 1, Limit: 2}, []int64{2, 3}},
		{"before", client.Query{Before: 3}, []int64{1, 2}},
		{"newest", client.Query{After: client.Newest, Limit: 2}, []int64{4, 5}},
		{"nothing newer", client.Query{After: 5}, nil},
	}
	for _, tt := range tests {
		p, err := c.Messages(ctx, "lobby", tt.q)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := seqs(p); !slices.Equal(got, tt.want) {
			t.Errorf("%s: seqs %v; want %v", tt.name, got, tt.want)
		}
		if p.Room != "lobby" || p.Epoch == "" || p.LastSeq != 5 {
			t.Errorf("%s: page room %q epoch %q last_seq %d", tt.name, p.Room, p.Epoch, p.LastSeq)
		}
	}
	_, err := c.Messages(ctx, "nowhere", client.Query{})
	wantCode(t, err, natter.ENOTFOUND)

	// A long-poll waits for the next message.
	got := make(chan client.Page, 1)
	go func() {
		p, err := c.Messages(ctx, "lobby", client.Query{After: 5, Wait: guard})
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	if _, err := c.Send(ctx, "lobby", "wake up"); err != nil {
		t.Fatal(err)
	}
	if p := <-got; len(p.Messages) != 1 || p.Messages[0].Body != "wake up" {
		t.Fatalf("long-poll answered %+v", p)
	}
}

func TestWSConnSession(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	c := ns.guest(t, "dave")
	if _, err := c.Send(ctx, "lobby", "before"); err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Subscribe(ctx, "lobby", 0); err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(ctx, "lobby", "via ws", "c-ws-1"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Subscribe(ctx, "no-such-room", 0); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var subscribed, acked, refused, presence bool
	for !(subscribed && acked && refused && presence && len(seen) == 2) {
		f, err := conn.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("ReadFrame: %v (so far %v)", err, seen)
		}
		switch f.Type {
		case "subscribed":
			subscribed = f.Room == "lobby" && f.Epoch != ""
		case "message":
			seen = append(seen, f.Message.Body)
		case "ack":
			acked = f.ClientID == "c-ws-1" && f.Seq == 2
		case "error":
			refused = f.Code == natter.ENOTFOUND && f.Ref == "no-such-room" && f.ErrMessage != ""
			wantCode(t, f.Err(), natter.ENOTFOUND)
		case "presence":
			presence = f.Room == "lobby" && slices.Contains(f.Online, "dave")
		}
	}
	if !slices.Equal(seen, []string{"before", "via ws"}) {
		t.Fatalf("messages %v", seen)
	}
	online, err := c.Presence(ctx, "lobby")
	if err != nil || !slices.Contains(online, "dave") {
		t.Fatalf("Presence = %v, %v", online, err)
	}
}

func TestDialWSRefusals(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	_, err := client.New(ns.URL).DialWS(ctx)
	wantCode(t, err, natter.EUNAUTHORIZED)
	c := ns.guest(t, "erin")
	_, err = c.DialWS(ctx, http.Header{"Origin": {"https://evil.example"}})
	wantCode(t, err, natter.EFORBIDDEN)
}

// TestConnectionLimitRefusalsSayWhenToRetry: a WebSocket or event stream refused at the server's
// connection limits is a rate_limited error whose RetryAfter is the server's Retry-After, and
// Follow tells it to OnError, waits as long as it asks (not its own shorter backoff), and keeps
// trying (it is not a permanent refusal) until a place is free.
func TestConnectionLimitRefusalsSayWhenToRetry(t *testing.T) {
	ns := startNatter(t)
	ns.close()
	ns.cfg.Server.MaxUserConns = 1
	ns.open()
	ctx := testCtx(t)
	c := ns.guest(t, "hal")
	held, err := c.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DialWS(ctx)
	wantCode(t, err, natter.ERATELIMITED)
	if d := client.RetryAfter(err); d != 5*time.Second {
		t.Fatalf("RetryAfter of a WebSocket refused at the limit = %v, want 5s", d)
	}
	if d := client.RetryAfter(errors.New("other")); d != 0 {
		t.Fatalf("RetryAfter of another error = %v", d)
	}

	for _, tr := range []client.Transport{client.TransportWS, client.TransportSSE} {
		refused := make(chan error, 16)
		col := newCollector()
		fctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- c.Follow(fctx, client.Subscription{Room: "lobby", After: 0, Transport: tr, OnMessage: col.add,
				OnError: func(err error) { refused <- err }})
		}()
		select {
		case err := <-refused:
			wantCode(t, err, natter.ERATELIMITED)
			if client.RetryAfter(err) != 5*time.Second {
				t.Fatalf("%s: Follow's refusal %v has RetryAfter %v, want 5s", tr, err, client.RetryAfter(err))
			}
		case err := <-done:
			t.Fatalf("%s: Follow gave up on a refusal at the connection limit: %v", tr, err)
		case <-time.After(guard):
			t.Fatalf("%s: no refusal reported", tr)
		}
		if tr == client.TransportWS {
			// The client's own backoff here is at most 100 ms; the refusal asked for 5 s, so no
			// second try may come within a second.
			select {
			case err := <-refused:
				t.Fatalf("Follow tried again within a second of a refusal that asked for 5 s: %v", err)
			case <-time.After(time.Second):
			}
		}
		if tr == client.TransportSSE {
			// The place comes free: Follow gets in after the Retry-After and delivers.
			held.Close()
			if _, err := c.Send(ctx, "lobby", "after the wait"); err != nil {
				t.Fatal(err)
			}
			col.waitFor(t, 1)
		}
		stop()
		<-done
	}
}

// collector gathers delivered messages for a subscription test.
type collector struct {
	mu   sync.Mutex
	msgs []natter.Message
	more chan struct{} // signalled after each delivery
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) add(m natter.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// waitFor waits until n messages arrived (or the guard passes) and returns them.
func (c *collector) waitFor(t testing.TB, n int) []natter.Message {
	t.Helper()
	deadline := time.NewTimer(guard)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := slices.Clone(c.msgs)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline.C:
			t.Fatalf("got %d messages; want %d", len(got), n)
		}
	}
}

// checkSeqs checks that msgs are exactly seqs from..to.
func checkSeqs(t testing.TB, msgs []natter.Message, from, to int64) {
	t.Helper()
	if int64(len(msgs)) != to-from+1 {
		t.Fatalf("got %d messages (%v); want seqs %d..%d", len(msgs), seqList(msgs), from, to)
	}
	for i, m := range msgs {
		if m.Seq != from+int64(i) {
			t.Fatalf("message %d has seq %d; want %d (all: %v)", i, m.Seq, from+int64(i), seqList(msgs))
		}
	}
}

func seqList(msgs []natter.Message) []int64 {
	var s []int64
	for _, m := range msgs {
		s = append(s, m.Seq)
	}
	return s
}

var transports = []client.Transport{client.TransportWS, client.TransportSSE, client.TransportPoll}

// TestSubscribeResumesAcrossRestart follows lobby on each transport while messages are sent
// before it starts, while it runs, and after a server restart: each must arrive once, in order.
func TestSubscribeResumesAcrossRestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ns := startNatter(t)
			ctx := testCtx(t)
			sender := ns.guest(t, "sender")
			reader := ns.guest(t, "reader")
			for i := range 3 {
				if _, err := sender.Send(ctx, "lobby", fmt.Sprint("early ", i)); err != nil {
					t.Fatal(err)
				}
			}
			col := newCollector()
			var epochs []string
			var errs []error
			subCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- reader.Follow(subCtx, client.Subscription{
					Room: "lobby", After: 1, Transport: tr, OnMessage: col.add,
					OnEpoch: func(old, new string) { epochs = append(epochs, old+"->"+new) },
					OnError: func(err error) { errs = append(errs, err) },
				})
			}()
			checkSeqs(t, col.waitFor(t, 2), 2, 3)
			for i := range 3 {
				if _, err := sender.Send(ctx, "lobby", fmt.Sprint("live ", i)); err != nil {
					t.Fatal(err)
				}
			}
			checkSeqs(t, col.waitFor(t, 5), 2, 6)

			ns.restart()
			for i := range 3 {
				if _, err := sender.Send(ctx, "lobby", fmt.Sprint("after restart ", i)); err != nil {
					t.Fatal(err)
				}
			}
			got := col.waitFor(t, 8)
			stop()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Follow returned %v; want context.Canceled", err)
			}
			checkSeqs(t, col.msgs, 2, 9)
			if got[7].Body != "after restart 2" || got[7].Author != "sender" {
				t.Errorf("last message %+v", got[7])
			}
			if len(epochs) != 1 || !strings.HasPrefix(epochs[0], "->") {
				t.Errorf("epochs %v; want the one epoch learned once", epochs)
			}
			// Long-polls retry inside Messages, so only the streams report the restart.
			if len(errs) == 0 && tr != client.TransportPoll {
				t.Errorf("OnError never told about the restart")
			}
		})
	}
}

func TestSubscribeFromNow(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ns := startNatter(t)
			ctx := testCtx(t)
			c := ns.guest(t, "frank")
			for range 4 {
				if _, err := c.Send(ctx, "lobby", "old"); err != nil {
					t.Fatal(err)
				}
			}
			col := newCollector()
			subCtx, stop := context.WithCancel(ctx)
			defer stop()
			started := make(chan struct{})
			go c.Follow(subCtx, client.Subscription{Room: "lobby", After: -1, Transport: tr, OnMessage: col.add,
				OnEpoch: func(string, string) { close(started) }})
			<-started // the end of the log is known: later sends are new
			if _, err := c.Send(ctx, "lobby", "new"); err != nil {
				t.Fatal(err)
			}
			got := col.waitFor(t, 1)
			checkSeqs(t, got, 5, 5)
		})
	}
}

func TestSubscribeUnknownRoomFails(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ns := startNatter(t)
			c := ns.guest(t, "gina")
			err := c.Subscribe(testCtx(t), "nowhere", 0, tr, func(natter.Message) { t.Error("delivered") })
			wantCode(t, err, natter.ENOTFOUND)
		})
	}
}

// TestSubscribeManySenders has several clients send concurrently while one subscriber per
// transport follows: each must see the same seqs 1..N once, in order.
func TestSubscribeManySenders(t *testing.T) {
	ns := startNatter(t)
	ctx := testCtx(t)
	const senders, each = 4, 25
	cols := map[client.Transport]*collector{}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	for _, tr := range transports {
		col := newCollector()
		cols[tr] = col
		go ns.guest(t, "reader-"+string(tr)).Subscribe(subCtx, "lobby", 0, tr, col.add)
	}
	var wg sync.WaitGroup
	for s := range senders {
		c := ns.guest(t, fmt.Sprint("sender", s))
		wg.Go(func() {
			for i := range each {
				if _, err := c.Send(ctx, "lobby", fmt.Sprint(s, "/", i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var want []natter.Message
	for tr, col := range cols {
		got := col.waitFor(t, senders*each)
		checkSeqs(t, got, 1, senders*each)
		if want == nil {
			want = got
			continue
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Body != want[i].Body {
				t.Fatalf("%s: message %d is %+v; another transport saw %+v", tr, i, got[i], want[i])
			}
		}
	}
}
