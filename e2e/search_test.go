package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"natter/app"
)

// Searching a room in the browser: the box in the room's head finds messages by their words,
// newest first, formatted as in the log (links as plain text) with the words marked and an
// edit's latest text; opening a result far back in
// history loads the log back to it and shows it; Escape closes the results.
func TestSearchInTheBrowser(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.SendRate = -1 })
	writer := srv.guest("writer")
	writer.send("lobby", "the Needle is here")
	for i := range 250 {
		writer.send("lobby", fmt.Sprintf("hay %d", i))
	}
	writer.send("lobby", "another **needle**, later: https://example.com/x")

	browser := newBrowser(t)
	p := newPage(t, browser, "reader")
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "reader", "", "guest")
	p.waitLive("ws")
	p.waitSeqs(153, 252)

	p.do("search for needle",
		chromedp.SendKeys(chromedp.CSS(`#search-q`), "needle"),
		pressEnter,
	)
	p.waitJS("two results, newest first, marked", `(() => {
		const r = [...document.querySelectorAll('#search-results a.result')];
		return !document.getElementById('search-panel').hidden && r.length === 2 &&
			r[0].dataset.seq === '252' && r[1].dataset.seq === '1' &&
			r[1].querySelector('.body').textContent === 'the Needle is here' &&
			r[1].querySelector('mark')?.textContent === 'Needle' &&
			r[0].querySelector('.body').textContent === 'another needle, later: https://example.com/x' &&
			r[0].querySelector('.body strong mark')?.textContent === 'needle' && !r[0].querySelector('.body a') &&
			/2 results for “needle”/.test(document.getElementById('search-status').textContent);
	})()`)
	p.screenshot("room-search")
	if shown := evalJS[bool](p, `!!document.getElementById('m1')`); shown {
		t.Fatal("message 1 is in the log before the result is opened: the test shows nothing")
	}

	p.do("open the old result", chromedp.Click(chromedp.CSS(`#search-results a.result[data-seq="1"]`)))
	p.waitJS("message 1 shown in the log, in view", `(() => {
		const m = document.getElementById('m1');
		if (!m || !document.getElementById('search-panel').hidden) return false;
		const s = document.getElementById('scroller').getBoundingClientRect(), r = m.getBoundingClientRect();
		return m.classList.contains('found') && r.bottom > s.top && r.top < s.bottom;
	})()`)
	p.waitSeqs(1, 252)

	p.do("search for what is not there",
		evalVoid(`document.getElementById('search-q').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#search-q`), "from:writer haystack"),
		pressEnter,
	)
	p.waitJS("no results", `/Nothing for “from:writer haystack” in 252 messages/.test(document.getElementById('search-status').textContent) && !document.querySelector('#search-results li')`)
	p.do("press Escape", chromedp.Focus(chromedp.CSS(`#search-q`)), pressKey("Escape", 27))
	p.waitJS("the results closed", `document.getElementById('search-panel').hidden`)
}
