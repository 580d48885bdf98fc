package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// Typing: while one person types, the others in the room see "bob is typing…" under the message
// box, until the message arrives; the notice goes out over a WebSocket, and by POST beside SSE.
func TestTypingIndicator(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	pages := map[string]*page{}
	for name, query := range map[string]string{"alice": "", "bob": "", "carol": "?transport=sse"} {
		p := newPage(t, browser, name)
		p.navigate(srv.url + "/rooms/lobby" + query)
		p.signIn(srv.url, name, "", "guest")
		pages[name] = p
	}
	alice, bob, carol := pages["alice"], pages["bob"], pages["carol"]
	alice.waitLive("ws")
	bob.waitLive("ws")
	carol.waitLive("sse")

	bob.do("type without sending", chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "hel"))
	alice.waitJS("bob typing", `(e => !e.hidden && e.textContent === 'bob is typing…')(document.getElementById('typing')) && document.getElementById('composer-hint').hidden`)
	carol.waitJS("bob typing, over SSE", `(e => !e.hidden && e.textContent === 'bob is typing…')(document.getElementById('typing'))`)
	if shown := evalJS[bool](bob, `!document.getElementById('typing').hidden`); shown {
		t.Fatal("bob sees a typing notice of his own")
	}
	alice.screenshot("room-typing")
	bob.do("finish and send", chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "lo"), pressEnter)
	alice.waitMessage("bob", "hello")
	// At once, not when the notice runs out (6 s): the message itself ends bob's typing.
	if typing := evalJS[bool](alice, `!document.getElementById('typing').hidden || document.getElementById('composer-hint').hidden`); typing {
		t.Fatal("bob still typing on alice's page once his message is in")
	}

	carol.do("type over SSE", chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "hm"))
	alice.waitJS("carol typing", `document.getElementById('typing').textContent === 'carol is typing…'`)
	bob.waitJS("carol typing", `document.getElementById('typing').textContent === 'carol is typing…'`)
}

// grantNotifications lets the page's origin show notifications, as a person answering the
// browser's prompt would.
func (p *page) grantNotifications(origin string) {
	p.t.Helper()
	p.do("grant notifications", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		c := chromedp.FromContext(ctx)
		_, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: c.BrowserContextID,
		})
		return err
	}))
}

// Notifications: with "Notify me" on, a message that mentions the reader while the page is in
// the background shows a desktop notification; other messages, and any while the page is in
// front, do not. (Headless Chromium shows no notification a test could see, so the page's
// Notification is wrapped to record each one it makes, then does what it did.)
func TestMentionNotifications(t *testing.T) {
	srv := startNatter(t, nil)
	bob := srv.guest("bob")
	alice := newPage(t, newBrowser(t), "alice")
	alice.grantNotifications(srv.url)
	alice.navigate(srv.url + "/rooms/lobby")
	alice.signIn(srv.url, "alice", "", "guest")
	alice.waitLive("ws")
	alice.do("record notifications", evalVoid(`window.__notes = []; const Real = window.Notification;
		window.Notification = class extends Real { constructor(title, opts) { super(title, opts); window.__notes.push(title + ': ' + opts.body); } }`))
	alice.do("turn notifications on", chromedp.Click(chromedp.CSS(`#notify`)))
	alice.waitJS("notifications on", `document.getElementById('notify').getAttribute('aria-pressed') === 'true'`)

	bob.send("lobby", "@alice while you look")
	alice.waitMessage("bob", "@alice while you look")
	alice.setVisibility("hidden")
	bob.send("lobby", "nothing for alice")
	bob.send("lobby", "@alice are you there?")
	alice.waitMessage("bob", "@alice are you there?")
	if notes := evalJS[[]string](alice, `window.__notes`); fmt.Sprint(notes) != "[bob in #lobby: @alice are you there?]" {
		t.Fatalf("notifications %q, want one for the mention while hidden", notes)
	}
	alice.setVisibility("visible")
	alice.do("turn notifications off", chromedp.Click(chromedp.CSS(`#notify`)))
	alice.waitJS("notifications off", `document.getElementById('notify').getAttribute('aria-pressed') === 'false'`)
	alice.setVisibility("hidden")
	bob.send("lobby", "@alice once more")
	alice.waitMessage("bob", "@alice once more")
	if n := evalJS[int](alice, `window.__notes.length`); n != 1 {
		t.Fatalf("%d notifications after turning them off, want still 1", n)
	}
}

// Mentions are completed: "@" and the start of a name offers the room's people (online, or
// authors on the page) above the box; Tab or Enter takes the one picked (the arrows move), and
// Escape closes the list without sending; the finished mention marks the message for its reader.
func TestMentionCompletion(t *testing.T) {
	srv := startNatter(t, nil)
	srv.guest("bea").send("lobby", "bea was here") // an author, not online
	browser := newBrowser(t)
	alice, bob := newPage(t, browser, "alice"), newPage(t, browser, "bob")
	for name, p := range map[string]*page{"alice": alice, "bob": bob} {
		p.navigate(srv.url + "/rooms/lobby")
		p.signIn(srv.url, name, "", "guest")
		p.waitLive("ws")
	}
	choices := `[...document.querySelectorAll('#mentions:not([hidden]) li')].map((li) => li.textContent + (li.getAttribute('aria-selected') === 'true' ? '*' : '')).join()`
	alice.waitJS("bob online", `!!document.querySelector('#online li[data-user="bob"]')`)
	alice.do("type a mention", chromedp.SendKeys(chromedp.CSS(`#body`), "hi @b"))
	alice.waitJS("bea and bob offered, bea picked", choices+` === '@bea*,@bob'`)
	alice.screenshot("room-mentions")
	alice.do("move down", pressKey("ArrowDown", 40))
	alice.waitJS("bob picked", choices+` === '@bea,@bob*'`)
	alice.do("take it", pressKey("Tab", 9))
	alice.waitJS("the mention written, the list closed", `document.getElementById('body').value === 'hi @bob ' && document.getElementById('mentions').hidden`)
	alice.do("another, then Escape", chromedp.SendKeys(chromedp.CSS(`#body`), "and @"), pressKey("Escape", 27))
	alice.waitJS("the list closed, nothing sent", `document.getElementById('mentions').hidden && document.getElementById('body').value === 'hi @bob and @' &&
		document.querySelectorAll('#messages li[data-seq]').length === 1`)
	alice.do("clear", evalVoid(`document.getElementById('body').value = ''`))
	alice.do("complete with Enter", chromedp.SendKeys(chromedp.CSS(`#body`), "@bo"), pressEnter)
	alice.waitJS("completed, not sent", `document.getElementById('body').value === '@bob ' && document.querySelectorAll('#messages li[data-seq]').length === 1`)
	alice.do("send", chromedp.SendKeys(chromedp.CSS(`#body`), "look"), pressEnter)
	bob.waitMessage("alice", "@bob look")
	if !evalJS[bool](bob, `document.querySelector('#messages li[data-seq="2"]').classList.contains('mention')`) {
		t.Fatal("bob's page does not mark alice's mention of him")
	}
}

// Drafts: what is typed and not sent is still in the box after going to another room and back
// (and after a reload), per room; sending clears it, and signing out forgets them all.
func TestDrafts(t *testing.T) {
	srv := startNatter(t, nil)
	srv.guest("gil").createRoom("ops", "Ops")
	browser := newBrowser(t)
	p := newPage(t, browser, "ann")
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "ann", "", "guest")
	p.waitLive("ws")
	p.do("type without sending", chromedp.SendKeys(chromedp.CSS(`#body`), "half a thought"))
	p.navigate(srv.url + "/rooms/ops")
	p.waitLive("ws")
	if v := evalJS[string](p, `document.getElementById('body').value`); v != "" {
		t.Fatalf("ops's box holds %q, want nothing (the draft is the lobby's)", v)
	}
	p.navigate(srv.url + "/rooms/lobby")
	p.waitLive("ws")
	p.waitJS("the lobby's draft back", `document.getElementById('body').value === 'half a thought'`)
	p.do("finish and send", chromedp.SendKeys(chromedp.CSS(`#body`), ", whole now"), pressEnter)
	p.waitMessage("ann", "half a thought, whole now")
	p.navigate(srv.url + "/rooms/lobby")
	p.waitLive("ws")
	if v := evalJS[string](p, `document.getElementById('body').value`); v != "" {
		t.Fatalf("after sending, the lobby's box holds %q on the next visit, want nothing", v)
	}
	// Signing out forgets the drafts kept in the browser.
	p.do("type a draft", chromedp.SendKeys(chromedp.CSS(`#body`), "private note"))
	p.navigate(srv.url + "/rooms/ops")
	p.waitJS("the draft kept", `Object.keys(localStorage).some((k) => k.startsWith('natter.draft.'))`)
	p.do("sign out", chromedp.Click(chromedp.CSS(`form[data-signout] button`)))
	p.waitJS("the sign-in page, no drafts", `location.pathname === '/signin' && !Object.keys(localStorage).some((k) => k.startsWith('natter.draft.'))`)
}
