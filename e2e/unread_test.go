package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// waitReadSeq waits until the server gives room the read_seq seq for the page's account.
func (p *page) waitReadSeq(room string, seq int64) {
	p.t.Helper()
	p.do("watch the read mark", evalVoid(fmt.Sprintf(`window.__readSeq = null; (async () => {
		for (let i = 0; i < 600; i++) {
			const r = await (await fetch('/api/rooms/%s', {cache: 'no-store'})).json();
			window.__readSeq = r.room.read_seq ?? null;
			if (window.__readSeq === %d) return;
			await new Promise((ok) => setTimeout(ok, 100));
		}
	})()`, room, seq)))
	p.waitJS(fmt.Sprintf("read_seq %d in %s", seq, room), fmt.Sprintf(`window.__readSeq === %d`, seq))
}

// setVisibility makes the page believe it is hidden or visible, as when its tab is in the
// background (headless Chromium keeps every tab visible).
func (p *page) setVisibility(state string) {
	p.t.Helper()
	p.do("make the page "+state, evalVoid(fmt.Sprintf(`Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => %q});
		document.dispatchEvent(new Event('visibilitychange'))`, state)))
}

// Unread messages: the read mark follows what the account has seen in the room, on the server;
// the room list counts the messages past it ("3 new") and the room opens with a "New" rule above
// the first of them; while the page is hidden the mark stays, the title counts what arrives, and
// the rule moves to the first message that came meanwhile. A message that names the reader
// (@alice) is marked.
func TestUnreadMessages(t *testing.T) {
	srv := startNatter(t, nil)
	bob := srv.guest("bob")
	bob.send("lobby", "one")
	bob.send("lobby", "two")

	browser := newBrowser(t)
	alice := newPage(t, browser, "alice")
	alice.signIn(srv.url, "alice", "alice's password", "register")
	alice.waitJS("the lobby listed without a count (alice has never been in it)",
		`document.querySelector('#rooms li[data-room=lobby]') && !document.querySelector('.room-unread')`)

	alice.navigate(srv.url + "/rooms/lobby")
	alice.waitLive("ws")
	alice.waitSeqs(1, 2)
	if n := evalJS[int](alice, `document.querySelectorAll('.unread-mark').length`); n != 0 {
		t.Fatalf("%d \"New\" rules on a first visit, want none", n)
	}
	alice.waitReadSeq("lobby", 2)

	// In the background: the mark stays, the title counts, the rule marks the first new message.
	alice.setVisibility("hidden")
	title := evalJS[string](alice, `document.title`)
	bob.send("lobby", "three")
	bob.send("lobby", "four")
	alice.waitSeqs(1, 4)
	alice.waitJS("the title counting 2", `document.title === '(2) `+title+`'`)
	alice.waitJS("the rule above message 3", `document.querySelectorAll('.unread-mark').length === 1 && !!document.querySelector('#m3 .unread-mark')`)
	alice.waitReadSeq("lobby", 2)
	alice.setVisibility("visible")
	alice.waitJS("the title back", `document.title === `+fmt.Sprintf("%q", title))
	alice.waitReadSeq("lobby", 4)

	// Away from the room, three more: the list counts them, and the room opens on a rule above
	// the first.
	alice.navigate(srv.url + "/")
	for _, body := range []string{"five", "six", "seven"} {
		bob.send("lobby", body)
	}
	alice.navigate(srv.url + "/")
	alice.waitJS("3 new in the lobby", `(e => e && e.textContent.trim() === '3 new')(document.querySelector('#rooms li[data-room=lobby] .room-unread'))`)
	alice.screenshot("rooms-unread")
	alice.do("open the lobby", chromedp.Click(chromedp.CSS(`#rooms li[data-room=lobby] a`)))
	alice.waitSeqs(1, 7)
	alice.waitJS("the rule above message 5", `document.querySelectorAll('.unread-mark').length === 1 && !!document.querySelector('#m5 .unread-mark')`)
	alice.screenshot("room-unread")
	alice.waitReadSeq("lobby", 7)

	// A message that names alice stands out to her; one that only looks like her name does not.
	bob.send("lobby", "ping @Alice!")
	bob.send("lobby", "not @alicex, nor mail@alice")
	alice.waitSeqs(1, 9)
	if got := evalJS[[]bool](alice, `['m8', 'm9', 'm7'].map((id) => document.getElementById(id).classList.contains('mention'))`); fmt.Sprint(got) != "[true false false]" {
		t.Fatalf("mention marks on messages 8, 9, 7: %v, want [true false false]", got)
	}
	alice.navigate(srv.url + "/")
	alice.waitJS("no count once read", `!!document.querySelector('#rooms li[data-room=lobby]') && !document.querySelector('.room-unread')`)
}

// The room list stays current without a reload: counts of new messages and of who is online
// appear when the page is shown again, and a room created meanwhile is added in name order.
func TestRoomListStaysCurrent(t *testing.T) {
	srv := startNatter(t, nil)
	bob := srv.guest("bob")
	browser := newBrowser(t)
	alice := newPage(t, browser, "alice")
	alice.signIn(srv.url, "alice", "alice's password", "register")
	alice.navigate(srv.url + "/rooms/lobby")
	alice.waitLive("ws")
	alice.navigate(srv.url + "/") // leaving the room marks it read (seq 0: nothing in it yet)
	alice.waitReadSeq("lobby", 0)

	bob.send("lobby", "while alice looks at the list")
	bob.send("lobby", "and another for @alice")
	bob.createRoom("aaa", "First")
	bob.createRoom("zzz", "Last")
	bob.join("lobby")
	alice.setVisibility("hidden")
	alice.setVisibility("visible")
	alice.waitJS("bob online in the lobby", `(e => e && !e.hidden && e.textContent === ' · 1 online')(document.querySelector('#rooms li[data-room=lobby] .room-online'))`)
	alice.waitJS("2 new in the lobby", `(e => e && e.textContent.trim() === '2 new' && e.dataset.unread === '2')(document.querySelector('#rooms li[data-room=lobby] .room-unread'))`)
	alice.waitJS("the lobby's count", `document.querySelector('#rooms li[data-room=lobby] .room-count').textContent === '2 messages'`)
	alice.waitJS("one of them names alice", `(e => e && e.textContent === '@1' && e.dataset.mentions === '1')(document.querySelector('#rooms li[data-room=lobby] .room-mention'))`)
	alice.screenshot("rooms-mention")
	order := evalJS[[]string](alice, `[...document.querySelectorAll('#rooms > li[data-room]')].map((li) => li.dataset.room)`)
	if fmt.Sprint(order) != "[aaa lobby zzz]" {
		t.Fatalf("rooms listed %v, want [aaa lobby zzz]", order)
	}
	alice.do("open the new room", chromedp.Click(chromedp.CSS(`#rooms li[data-room=aaa] a`)))
	alice.waitJS("room aaa open", `location.pathname === '/rooms/aaa' && document.getElementById('room-title').textContent === 'First'`)
}

// The room page lists the rooms beside the log on a wide screen: the one open is marked, the
// others show their new-message counts as they change, and one click opens another room.
func TestRoomsBesideTheRoom(t *testing.T) {
	srv := startNatter(t, nil)
	bob := srv.guest("bob")
	bob.createRoom("ops", "Operations")
	browser := newBrowser(t)
	alice := newPage(t, browser, "alice")
	alice.viewport(1280, 800, false)
	alice.signIn(srv.url, "alice", "alice's password", "register")
	alice.navigate(srv.url + "/rooms/ops")
	alice.waitLive("ws")
	alice.navigate(srv.url + "/rooms/lobby") // ops is marked read (at 0) on the way out
	alice.waitLive("ws")
	alice.waitJS("the rooms beside the log, lobby marked as open",
		`getComputedStyle(document.querySelector('.rooms-nav')).display !== 'none' &&
		 document.querySelector('#rooms li[data-room=lobby] a').getAttribute('aria-current') === 'page' &&
		 !document.querySelector('#rooms li[data-room=ops] a').hasAttribute('aria-current')`)
	alice.waitReadSeq("ops", 0)
	bob.send("ops", "in ops")
	bob.send("ops", "still in ops")
	alice.setVisibility("hidden")
	alice.setVisibility("visible")
	alice.waitJS("2 new in ops", `(e => e && e.textContent.trim() === '2 new')(document.querySelector('#rooms li[data-room=ops] .room-unread'))`)
	alice.screenshot("room-nav")
	alice.do("open ops from the list", chromedp.Click(chromedp.CSS(`#rooms li[data-room=ops] a`)))
	alice.waitJS("ops open", `location.pathname === '/rooms/ops'`)
	alice.waitSeqs(1, 2)
	alice.waitJS("the rule above the first new message", `!!document.querySelector('#m1 .unread-mark')`)
}
