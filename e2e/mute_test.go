package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Muting in the browser: Mute in a room's head keeps the choice on the server (after a reload
// the button says Muted), the room lists show the room muted, its new messages counted quietly,
// and a page in the background counts in its title only the messages that name the reader; Mute
// again unmutes it. Guests have no Mute.
func TestMuteInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	ann := newPage(t, browser, "ann")
	ann.signIn(srv.url, "ann", "ann's password", "register")
	ann.createRoom("noisy", false)
	ann.waitLive("ws")
	ann.waitJS("Mute, not pressed", `document.getElementById('mute').getAttribute('aria-pressed') === 'false' && document.getElementById('mute').textContent === 'Mute'`)
	ann.do("mute", chromedp.Click(chromedp.CSS(`#mute`)))
	ann.waitJS("Muted, and the room muted in the list beside it", `document.getElementById('mute').getAttribute('aria-pressed') === 'true' &&
		document.getElementById('mute').textContent === 'Muted' && document.querySelector('#rooms li[data-room="noisy"]').classList.contains('muted') &&
		document.querySelector('#rooms li[data-room="noisy"] .room-muted')?.textContent === ' (muted)'`)

	// Away from the room (so that her page reads nothing of it), she finds it muted on the list.
	ann.navigate(srv.url + "/")
	ann.waitJS("the room list", `!!document.querySelector('#rooms li[data-room="noisy"]')`)
	bob := srv.guest("bob")
	bob.send("noisy", "one")
	bob.send("noisy", "two")
	ann.navigate(srv.url + "/")
	ann.waitJS("the room muted on the room list, its two new messages counted", `(() => {
		const li = document.querySelector('#rooms li[data-room="noisy"]');
		return li.classList.contains('muted') && li.querySelector('.room-unread')?.textContent === '2 new' &&
			li.querySelector('a').textContent.includes('noisy (muted)') &&
			!document.querySelector('#rooms li[data-room="lobby"]').classList.contains('muted');
	})()`)
	if w := evalJS[string](ann, `getComputedStyle(document.querySelector('#rooms li[data-room="noisy"] .room-title')).fontWeight`); w == "700" {
		t.Fatal("the muted room's title is bold for its new messages")
	}
	ann.screenshot("rooms-muted")

	ann.navigate(srv.url + "/rooms/noisy")
	ann.waitLive("ws")
	ann.waitJS("still Muted after a reload", `document.getElementById('mute').getAttribute('aria-pressed') === 'true'`)
	// In the background, the title counts only what names her.
	ann.waitSeqs(1, 2)
	ann.setVisibility("hidden")
	title := evalJS[string](ann, `document.title`)
	bob.send("noisy", "three")
	bob.send("noisy", "hey @ann, look")
	ann.waitSeqs(1, 4)
	ann.waitJS("the title counting the mention alone", `document.title === '(1) `+title+`'`)
	ann.setVisibility("visible")
	ann.do("unmute", chromedp.Click(chromedp.CSS(`#mute`)))
	ann.waitJS("Mute again", `document.getElementById('mute').getAttribute('aria-pressed') === 'false' && !document.querySelector('#rooms li[data-room="noisy"]').classList.contains('muted') &&
		!document.querySelector('#rooms li[data-room="noisy"] .room-muted')`)
	ann.navigate(srv.url + "/rooms/noisy")
	ann.waitLive("ws")
	if evalJS[string](ann, `document.getElementById('mute').getAttribute('aria-pressed')`) != "false" {
		t.Fatal("unmuting did not last a reload")
	}

	gus := newPage(t, browser, "gus")
	gus.signIn(srv.url, "gus", "", "guest")
	gus.navigate(srv.url + "/rooms/noisy")
	gus.waitLive("ws")
	if evalJS[bool](gus, `!!document.getElementById('mute')`) {
		t.Fatal("a guest has Mute")
	}
}
