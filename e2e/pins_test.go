package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"natter/app"
)

// Pins in the browser: the room's creator pins a message from its tools; it shows a mark, and the
// Pinned panel lists it, on every page in the room at once (another reader's, who has no Pin). A
// pinned message far back opens from the list, history loaded back to it. Unpinning from the list
// takes it away everywhere; a reload shows the pins as they are.
func TestPinsInTheBrowser(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.SendRate = -1 })
	browser := newBrowser(t)
	carol, dan := newPage(t, browser, "carol"), newPage(t, browser, "dan")
	for name, p := range map[string]*page{"carol": carol, "dan": dan} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	carol.createRoom("ops", false)
	bob := srv.guest("bob")
	bob.send("ops", "the runbook is at /wiki/ops")
	for i := range 150 { // the runbook's message falls out of the first page of history
		bob.send("ops", fmt.Sprint("chatter ", i))
	}
	carol.navigate(srv.url + "/rooms/ops#m1")
	carol.waitLive("ws")
	carol.waitJS("the first message, loaded back to", `!!document.querySelector('#m1')`)
	dan.navigate(srv.url + "/rooms/ops")
	dan.waitLive("ws")
	dan.waitSeqs(52, 151)
	if evalJS[bool](dan, `!!document.querySelector('#messages .pin-actions')`) {
		t.Fatal("dan, no moderator, has Pin")
	}

	carol.tapMessage(1)
	carol.do("pin the runbook", chromedp.Click(chromedp.CSS(`#m1 .pin-actions button`)))
	const listed = `(() => {
		const li = document.querySelector('#pins li[data-seq="1"]');
		return !document.getElementById('pins-section').hidden && document.querySelectorAll('#pins li').length === 1 &&
			!!li && li.textContent.includes('bob') && li.textContent.includes('the runbook is at /wiki/ops');
	})()`
	carol.waitJS("the pin in carol's list, the mark on the message", listed+` && document.querySelector('#m1').classList.contains('pinned') &&
		document.querySelector('#m1 .pin-actions button').textContent === 'Unpin'`)
	dan.waitJS("the pin in dan's list, live", listed)
	carol.screenshot("room-pinned")

	dan.do("open the pin", chromedp.Click(chromedp.CSS(`#pins li[data-seq="1"] .pin-open`)))
	dan.waitJS("the pinned message, history loaded back to it", `!!document.querySelector('#m1.pinned') && document.querySelector('#m1 .pin-mark').textContent.includes('pinned')`)

	dan.navigate(srv.url + "/rooms/ops")
	dan.waitLive("ws")
	dan.waitJS("the pin after a reload", listed)

	carol.do("unpin from the list", chromedp.Click(chromedp.CSS(`#pins li[data-seq="1"] .unpin`)))
	const gone = `document.getElementById('pins-section').hidden && document.querySelectorAll('#pins li').length === 0`
	carol.waitJS("carol's list empty, the mark gone", gone+` && !document.querySelector('#m1').classList.contains('pinned') && !document.querySelector('#m1 .pin-mark')`)
	dan.waitJS("dan's list empty", gone)
}
