package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Reactions in the browser: React on a message offers a few emoji; the reaction shows under the
// message on every page with its count, pressed for those who put it there; clicking it adds
// one's own or takes it off; a reload shows the same, and no reaction is shown as a message.
func TestReactionsInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	alice, bob := newPage(t, browser, "alice"), newPage(t, browser, "bob")
	alice.navigate(srv.url + "/rooms/lobby")
	alice.signIn(srv.url, "alice", "alice's password", "register")
	bob.navigate(srv.url + "/rooms/lobby")
	bob.signIn(srv.url, "bob", "", "guest")
	for _, p := range []*page{alice, bob} {
		p.waitLive("ws")
	}
	alice.say("ship it?")
	bob.waitSeqs(1, 1)

	bob.tapMessage(1)
	bob.do("open React", chromedp.Click(chromedp.CSS(`#m1 .react-actions button`)))
	bob.do("pick 👍", chromedp.Click(chromedp.CSS(`#m1 .react-palette button:first-child`)))
	chip := func(count int, pressed bool) string {
		return `(() => {
			const b = document.querySelector('#m1 .reactions .reaction[data-emoji="👍"]');
			return !!b && b.querySelector('.count').textContent === '` + string(rune('0'+count)) + `' &&
				b.getAttribute('aria-pressed') === '` + map[bool]string{true: "true", false: "false"}[pressed] + `' &&
				!document.querySelector('#m1 .react-palette') && document.querySelectorAll('#messages [data-seq]').length === 1;
		})()`
	}
	bob.waitJS("bob's 👍, pressed", chip(1, true))
	alice.waitJS("bob's 👍 on alice's page", chip(1, false))
	alice.do("add alice's", chromedp.Click(chromedp.CSS(`#m1 .reaction[data-emoji="👍"]`)))
	alice.waitJS("two 👍, alice's pressed", chip(2, true))
	bob.waitJS("two 👍 on bob's page", chip(2, true))
	alice.screenshot("room-reactions")
	bob.do("take bob's off", chromedp.Click(chromedp.CSS(`#m1 .reaction[data-emoji="👍"]`)))
	bob.waitJS("one 👍, not bob's", chip(1, false))
	alice.waitJS("one 👍, alice's", chip(1, true))

	alice.navigate(srv.url + "/rooms/lobby")
	alice.waitLive("ws")
	alice.waitJS("the same after a reload", chip(1, true))
}

// The account that created a room renames it from the room's head: Rename, type, Enter; the
// heading and the page's title (and the topic beside them) change at once, and the room list shows the new title, as do
// pages open on the room elsewhere (long-polling ones when they next read the room). Others have
// no Rename.
func TestRenameInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	alice := newPage(t, browser, "alice")
	alice.signIn(srv.url, "alice", "alice's password", "register")
	alice.createRoom("ops", false)
	alice.waitLive("ws")
	bob := newPage(t, browser, "bob")
	bob.navigate(srv.url + "/")
	bob.signIn(srv.url, "bob", "", "guest")
	bob.waitJS("ops on bob's room list", `document.querySelector('#rooms li[data-room="ops"] .room-title')?.textContent.trim() === 'ops'`)
	alice.do("rename it",
		chromedp.Click(chromedp.CSS(`#rename`)),
		evalVoid(`document.getElementById('rename-title').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#rename-title`), "Operations & on-call"),
		pressEnter,
	)
	alice.waitJS("the new title", `document.getElementById('room-title').textContent === 'Operations & on-call' &&
		!document.getElementById('room-title').hidden && document.getElementById('rename-form').hidden &&
		document.title.startsWith('Operations & on-call')`)
	alice.do("a title too long",
		chromedp.Click(chromedp.CSS(`#rename`)),
		evalVoid(`document.getElementById('rename-title').removeAttribute('maxlength'); document.getElementById('rename-title').value = 'x'.repeat(201)`),
		pressKey("Enter", 13),
	)
	alice.waitJS("the refusal", `!document.getElementById('rename-error').hidden && /the limit is 200/.test(document.getElementById('rename-error').textContent)`)
	alice.do("cancel", pressKey("Escape", 27))
	alice.waitJS("the title kept", `document.getElementById('room-title').textContent === 'Operations & on-call' && document.getElementById('rename-form').hidden`)

	bob.setVisibility("hidden")
	bob.setVisibility("visible") // the list refreshes when shown
	bob.waitJS("the new title on bob's room list, without a reload", `document.querySelector('#rooms li[data-room="ops"] .room-title')?.textContent.trim() === 'Operations & on-call'`)
	bob.navigate(srv.url + "/rooms/ops")
	bob.waitLive("ws")
	if evalJS[bool](bob, `!!document.getElementById('rename')`) {
		t.Fatal("bob, who did not create the room, has Rename")
	}

	// Pages open on the room (over a WebSocket, over an event stream) show the next rename at
	// once: heading, page title, the list beside the room.
	carol := newPage(t, browser, "carol")
	carol.navigate(srv.url + "/rooms/ops?transport=sse")
	carol.signIn(srv.url, "carol", "", "guest")
	carol.navigate(srv.url + "/rooms/ops?transport=sse")
	carol.waitLive("sse")
	// A long-polling page reads the room when it reads who is online (every second here).
	dave := newPage(t, browser, "dave")
	dave.signIn(srv.url, "dave", "", "guest")
	dave.navigate(srv.url + "/rooms/ops?transport=poll&presence_every=1")
	dave.waitLive("poll")
	alice.do("rename it again, with a topic",
		chromedp.Click(chromedp.CSS(`#rename`)),
		evalVoid(`document.getElementById('rename-title').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#rename-title`), "Ops"),
		chromedp.SendKeys(chromedp.CSS(`#rename-topic`), "deploys on Tuesdays"),
		pressEnter,
	)
	for _, p := range []*page{alice, bob, carol, dave} {
		p.waitJS("the new title and topic, without a reload", `document.getElementById('room-title').textContent === 'Ops' &&
			document.title.startsWith('Ops') && document.querySelector('#rooms li[data-room="ops"] .room-title').textContent === 'Ops' &&
			!document.getElementById('room-topic').hidden && document.getElementById('room-topic').textContent === 'deploys on Tuesdays'`)
	}
	alice.screenshot("room-topic")
	bob.navigate(srv.url + "/rooms/ops")
	bob.waitJS("the topic after a reload", `!document.getElementById('room-topic').hidden && document.getElementById('room-topic').textContent === 'deploys on Tuesdays'`)
	alice.do("clear the topic",
		chromedp.Click(chromedp.CSS(`#rename`)),
		evalVoid(`document.getElementById('rename-topic').value = ''`),
		chromedp.Click(chromedp.CSS(`#rename-form button[type=submit]`)),
	)
	carol.waitJS("no topic", `document.getElementById('room-topic').hidden`)
	alice.do("a topic again",
		chromedp.Click(chromedp.CSS(`#rename`)),
		chromedp.SendKeys(chromedp.CSS(`#rename-topic`), "on-call: dave"),
		pressEnter,
	)
	alice.waitJS("the topic set", `document.getElementById('room-topic').textContent === 'on-call: dave'`)
	bob.navigate(srv.url + "/")
	bob.waitJS("the topic on the room list", `(() => {
		const about = document.querySelector('#rooms li[data-room="ops"] .room-about');
		return !!about && !about.hidden && about.textContent === 'on-call: dave' &&
			document.querySelector('#rooms li[data-room="lobby"] .room-about').hidden;
	})()`)
}
