package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Bans in the browser: the room's creator bans bob from the online list; bob's page (live on a
// WebSocket) swaps its message box for the note at once, and the creator's lists show the ban. A
// user banned by name while long-polling learns it when a send is refused, and of the lift when
// the page next reads the room. Lifting the ban gives bob his box back.
func TestBanInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	carol, bob, dan := newPage(t, browser, "carol"), newPage(t, browser, "bob"), newPage(t, browser, "dan")
	for name, p := range map[string]*page{"carol": carol, "bob": bob, "dan": dan} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	carol.createRoom("ops", false)
	carol.waitJS("the new room, with the bans panel", `location.pathname === '/rooms/ops' && !!document.getElementById('bans')`)
	carol.waitLive("ws")
	bob.navigate(srv.url + "/rooms/ops")
	bob.waitLive("ws")
	bob.say("before the ban")
	bob.waitMessage("bob", "before the ban")
	if evalJS[bool](bob, `!!document.getElementById('bans') || !!document.querySelector('#online .mod-action')`) {
		t.Fatal("bob, no moderator, has the ban controls")
	}
	dan.navigate(srv.url + "/rooms/ops?transport=poll&presence_every=3600")
	dan.waitLive("poll")
	dan.waitJS("dan's page has read the room once", `document.querySelector('#online li[data-user="dan"]') !== null`)

	carol.waitJS("bob online, with a ban button", `!!document.querySelector('#online li[data-user="bob"] .mod-action')`)
	carol.do("ban bob", chromedp.Click(chromedp.CSS(`#online li[data-user="bob"] .mod-action`)))
	bob.waitJS("bob's box gives way to the note", `document.getElementById('composer').classList.contains('is-banned') &&
		!document.getElementById('banned-note').hidden && getComputedStyle(document.getElementById('body')).display === 'none' &&
		document.querySelector('main.room').classList.contains('banned')`)
	if !evalJS[bool](bob, `(li => getComputedStyle(li.querySelector('.own-actions .edit')).display === 'none' &&
		getComputedStyle(li.querySelector('.own-actions button:last-child')).display !== 'none' &&
		getComputedStyle(li.querySelector('.reply-actions')).display === 'none')(document.querySelector('#messages li.mine'))`) {
		t.Fatal("bob's banned page still offers Edit or Reply, or no longer Delete")
	}
	carol.waitJS("bob in the bans list and struck in the online list", `[...document.querySelectorAll('#bans li')].map((li) => li.dataset.user).join() === 'bob' &&
		document.querySelector('#online li[data-user="bob"]').classList.contains('banned') &&
		document.querySelector('#online li[data-user="bob"] .mod-action').textContent === 'unban'`)
	bob.screenshot("room-banned")
	carol.screenshot("room-moderator")

	// Dan, long-polling, is banned by name: he hears of it when his message is refused.
	carol.do("ban dan by name", chromedp.SendKeys(chromedp.CSS(`#ban-name`), "Dan"), chromedp.Click(chromedp.CSS(`#add-ban button`)))
	carol.waitJS("dan in the bans list", `[...document.querySelectorAll('#bans li')].map((li) => li.dataset.user).join() === 'bob,dan' && document.getElementById('ban-name').value === ''`)
	dan.say("can I still talk?")
	dan.waitJS("dan's message refused, then the note", `/banned from posting/.test(document.querySelector('#pending li.failed')?.textContent || '') &&
		document.getElementById('composer').classList.contains('is-banned')`)

	// A lift reaches the long-polling page when it next reads the room (every second here, on a
	// page opened while the ban held).
	dan.navigate(srv.url + "/rooms/ops?transport=poll&presence_every=1")
	dan.waitLive("poll")
	dan.waitJS("dan's reloaded page knows of the ban", `document.getElementById('composer').classList.contains('is-banned')`)
	carol.do("lift dan's ban", chromedp.Click(chromedp.CSS(`#bans li[data-user="dan"] button`)))
	dan.waitJS("dan's box back", `!document.getElementById('composer').classList.contains('is-banned') && document.getElementById('banned-note').hidden`)

	carol.do("lift bob's ban", chromedp.Click(chromedp.CSS(`#bans li[data-user="bob"] button`)))
	bob.waitJS("bob's box back", `!document.getElementById('composer').classList.contains('is-banned') && document.getElementById('banned-note').hidden`)
	bob.say("thanks")
	carol.waitMessage("bob", "thanks")

	// Terms chosen in the panel go with the next ban, the button beside a name's too: bob sees
	// until when and why, live and after a reload; carol's list says until when.
	carol.do("choose an hour and a reason", chromedp.SetValue(chromedp.CSS(`#ban-for`), "1h"),
		chromedp.SendKeys(chromedp.CSS(`#ban-reason`), "cool off"),
		chromedp.Click(chromedp.CSS(`#online li[data-user="bob"] .mod-action`)))
	const terms = `!document.getElementById('banned-note').hidden && / until .*\(cool off\)$/.test(document.getElementById('ban-terms').textContent)`
	bob.waitJS("bob's note with the terms", terms)
	carol.waitJS("bob's ban listed with its end", `/^bob \(until /.test(document.querySelector('#bans li[data-user="bob"]')?.firstChild?.textContent || '')`)
	bob.navigate(srv.url + "/rooms/ops")
	bob.waitLive("ws")
	bob.waitJS("the terms after a reload", terms)
	bob.screenshot("room-banned-terms")
}
