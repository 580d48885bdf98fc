package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"natter/app"
)

// A message's time is its link: /rooms/lobby#m5 opens the room, loads history back to message 5
// (far beyond the first page) and shows it marked; Link on another message (for the grouped
// ones, whose time is not shown) names it in the address and shows it the same way.
func TestMessageLinks(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.SendRate = -1 })
	bea := srv.guest("bea")
	for i := 1; i <= 250; i++ {
		bea.send("lobby", fmt.Sprintf("message %d", i))
	}
	browser := newBrowser(t)
	p := newPage(t, browser, "ann")
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "ann", "", "guest")
	p.navigate(srv.url + "/rooms/lobby#m5")
	p.waitJS("message 5 loaded, shown and marked", `(li => !!li && li.classList.contains('found') &&
		(r => r.top >= 0 && r.bottom <= innerHeight)(li.getBoundingClientRect()))(document.getElementById('m5'))`)
	if href := evalJS[string](p, `document.querySelector('#m250 .meta a.permalink').getAttribute('href')`); href != "#m250" {
		t.Fatalf("message 250's time links to %q, want #m250", href)
	}
	p.tapMessage(250)
	p.do("link to message 250", chromedp.Click(chromedp.CSS(`#m250 .link-actions button`)))
	p.waitJS("message 250 marked, the address naming it", `location.hash === '#m250' && document.getElementById('m250').classList.contains('found')`)
}
