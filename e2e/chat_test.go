// Package e2e drives a real Chromium against a real natter started in-process: the pages, the
// browser client and its three transports, as a person would use them.
package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Two people with separate cookies: one registers, one is a guest; they meet in a new room, see
// each other online, chat (with a multi-line message), and one signs out.
func TestTwoPeopleChat(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	alice := newPage(t, browser, "alice")
	bob := newPage(t, browser, "bob")

	// Signed out, the room list sends alice to sign in, and back afterwards.
	alice.navigate(srv.url + "/")
	if got := alice.path(); got != "/signin?next=%2F" {
		t.Fatalf("signed-out visit to / went to %q, want the sign-in page", got)
	}
	alice.signIn(srv.url, "alice", "correct horse", "register")
	if got := alice.path(); got != "/" {
		t.Fatalf("after registering alice is at %q, want /", got)
	}
	alice.screenshot("rooms-desktop")
	alice.do("create a room",
		chromedp.SendKeys(chromedp.CSS(`#create-room input[name=name]`), "ops"),
		chromedp.SendKeys(chromedp.CSS(`#create-room input[name=title]`), "Operations"),
		chromedp.Click(chromedp.CSS(`#create-room button[type=submit]`)),
	)
	alice.waitJS("the new room's page", `location.pathname === '/rooms/ops'`)
	alice.waitLive("ws")

	// Bob follows a link to the room, signs in as a guest and lands in it.
	bob.navigate(srv.url + "/rooms/ops")
	bob.signIn(srv.url, "bob", "", "guest")
	if got := bob.path(); got != "/rooms/ops" {
		t.Fatalf("after signing in bob is at %q, want /rooms/ops", got)
	}
	bob.waitLive("ws")

	alice.waitJS("bob online", `!!document.querySelector('#online [data-user="bob"]')`)
	bob.waitJS("alice online", `!!document.querySelector('#online [data-user="alice"]')`)

	alice.say("hi bob")
	bob.waitMessage("alice", "hi bob")
	alice.waitMessage("alice", "hi bob")

	// Shift+Enter makes a new line; Enter sends.
	bob.do("type two lines",
		chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "hello alice"),
		chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "second line"),
		pressEnter,
	)
	alice.waitMessage("bob", "hello alice\nsecond line")
	if v := evalJS[string](bob, `document.querySelector('textarea[name=body]').value`); v != "" {
		t.Errorf("the message box still holds %q after sending", v)
	}

	for i := range 6 {
		who, body := alice, fmt.Sprintf("message %d from alice, with a link to https://example.com/docs?page=%d.", i, i)
		if i%2 == 1 {
			who, body = bob, fmt.Sprintf("reply %d from bob", i)
		}
		who.say(body)
	}
	alice.waitSeqs(1, 8)
	bob.waitSeqs(1, 8)

	// The pages a passing run keeps, to look at.
	alice.screenshot("room-desktop")
	alice.viewport(390, 844, true)
	alice.waitJS("the phone layout", `window.innerWidth === 390`)
	alice.do("scroll to the newest message", chromedp.Evaluate[chromedp.Void](`document.getElementById('scroller').scrollTop = 1e9`))
	alice.screenshot("room-phone")
	// The room's title keeps its room in the head beside Search and the connection (it was
	// squeezed to nothing once they came).
	if w := evalJS[float64](alice, `document.getElementById('room-title').getBoundingClientRect().width`); w < 40 {
		t.Errorf("the room's title is %.0f px wide on a phone", w)
	}
	alice.colorScheme("dark")
	alice.screenshot("room-phone-dark")
	alice.viewport(1280, 800, false)
	alice.screenshot("room-desktop-dark")
	alice.colorScheme("light")

	// Bob signs out: his session ends, his pages send him to sign in, and alice sees him leave.
	bob.do("sign out", chromedp.Click(chromedp.CSS(`form[data-signout] button`)))
	bob.waitJS("the sign-in page", `location.pathname === '/signin'`)
	alice.waitJS("bob gone from the online list", `!document.querySelector('#online [data-user="bob"]')`)
	bob.navigate(srv.url + "/rooms/ops")
	if got := bob.path(); got != "/signin?next=%2Frooms%2Fops" {
		t.Fatalf("after signing out, the room page went to %q, want the sign-in page", got)
	}
	bob.screenshot("signin-desktop")
}
