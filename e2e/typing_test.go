package e2e

import (
	"testing"

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
	alice.waitJS("no one typing once bob's message is in", `document.getElementById('typing').hidden && !document.getElementById('composer-hint').hidden`)

	carol.do("type over SSE", chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), "hm"))
	alice.waitJS("carol typing", `document.getElementById('typing').textContent === 'carol is typing…'`)
	bob.waitJS("carol typing", `document.getElementById('typing').textContent === 'carol is typing…'`)
}
