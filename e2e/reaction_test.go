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

	if evalJS[bool](bob, `matchMedia('(hover: none)').matches`) {
		bob.do("tap the message", chromedp.Click(chromedp.CSS(`#m1 .body`)))
	}
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
