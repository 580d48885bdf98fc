package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"

	"natter/app"
)

// Deleting a room in the browser: its creator asks, confirms (after a first Cancel), and lands on
// the room list, which no longer has it; the pages of the room's readers, on the WebSocket, on an
// event stream and long-polling, each say at once that the room no longer exists, and reading it
// again finds nothing. Its readers have no Delete.
func TestDeleteRoomInTheBrowser(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.SendRate = -1 })
	browser := newBrowser(t)
	carol, dan, erin := newPage(t, browser, "carol"), newPage(t, browser, "dan"), newPage(t, browser, "erin")
	for name, p := range map[string]*page{"carol": carol, "dan": dan, "erin": erin} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	carol.createRoom("junk", false)
	carol.waitLive("ws")
	srv.guest("bob").send("junk", "buy cheap watches")
	carol.waitSeqs(1, 1)
	dan.navigate(srv.url + "/rooms/junk?transport=sse")
	dan.waitLive("sse")
	dan.waitSeqs(1, 1)
	erin.navigate(srv.url + "/rooms/junk?transport=poll")
	erin.waitLive("poll")
	erin.waitSeqs(1, 1)
	if evalJS[bool](dan, `!!document.getElementById('delete-room')`) {
		t.Fatal("dan, no moderator, has Delete room")
	}

	carol.do("ask, then think again",
		chromedp.Click(chromedp.CSS(`#delete-room`)),
		chromedp.WaitVisible(chromedp.CSS(`#delete-room-form`)),
		chromedp.Click(chromedp.CSS(`#delete-room-cancel`)),
	)
	carol.waitJS("the form closed, nothing deleted", `document.getElementById('delete-room-form').hidden && !document.getElementById('delete-room').hidden`)
	carol.do("ask again", chromedp.Click(chromedp.CSS(`#delete-room`)), chromedp.WaitVisible(chromedp.CSS(`#delete-room-confirm`)))
	carol.screenshot("room-delete-confirm")
	carol.do("delete for good", chromedp.Click(chromedp.CSS(`#delete-room-confirm`)))
	carol.waitJS("the room list, without the room", `location.pathname === '/' && !!document.querySelector('#rooms') &&
		!document.querySelector('#rooms li[data-room="junk"]')`)

	const gone = `(() => { const e = document.getElementById('composer-error'); return !e.hidden && e.textContent.includes('This room no longer exists.'); })()`
	dan.waitJS("dan's page (an event stream) says the room is gone", gone)
	erin.waitJS("erin's page (long-polling) says the room is gone", gone)
	dan.screenshot("room-deleted")
	dan.navigate(srv.url + "/rooms/junk")
	dan.waitJS("the room's page is not found", `document.title.toLowerCase().includes('not found') || document.body.textContent.includes('no room named')`)
}
