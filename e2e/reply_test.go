package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"natter/app"
)

// Replies in the browser: Reply on a message starts an answer in the composer (Escape or ×
// cancels it); the reply shows the message it answers above its own text, on every page, and
// clicking that quote shows the message in the log, loading history back to it when it is not
// on the page yet.
func TestRepliesInTheBrowser(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.SendRate = -1 })
	writer := srv.guest("writer")
	writer.send("lobby", "the **plan** is ready")
	for i := range 150 {
		writer.send("lobby", fmt.Sprintf("filler %d", i))
	}

	browser := newBrowser(t)
	p := newPage(t, browser, "alice")
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "alice", "alice's password", "register")
	p.waitLive("ws")
	p.waitSeqs(52, 151)

	// Headless Chromium has no hover, as a phone: Reply shows on the message tapped.
	if evalJS[bool](p, `matchMedia('(hover: none)').matches`) {
		if evalJS[bool](p, `!!document.querySelector('#m151 .reply-actions button').offsetParent`) {
			t.Fatal("Reply shows on every message without hover, before any is tapped")
		}
		p.do("tap filler 149", chromedp.Click(chromedp.CSS(`#m151 .body`)))
	}
	p.do("reply to filler 149", chromedp.Click(chromedp.CSS(`#m151 .reply-actions button`)))
	p.waitJS("the composer says what is answered", `!document.getElementById('replying').hidden &&
		document.querySelector('#replying .replying-author').textContent === 'writer' &&
		document.querySelector('#replying .replying-text').textContent === 'filler 149' &&
		document.activeElement === document.querySelector('textarea[name=body]')`)
	p.do("cancel with Escape", pressKey("Escape", 27))
	p.waitJS("the reply cancelled", `document.getElementById('replying').hidden`)
	if evalJS[bool](p, `matchMedia('(hover: none)').matches`) {
		p.do("tap filler 149 again", chromedp.Click(chromedp.CSS(`#m151 .body`)))
	}
	p.do("reply again", chromedp.Click(chromedp.CSS(`#m151 .reply-actions button`)))
	p.screenshot("room-reply-composer")
	p.say("answering")
	p.waitJS("the reply with its quote", `(() => {
		const m = document.getElementById('m152');
		const q = m && m.querySelector('.quote');
		return q && q.dataset.replyTo === '151' && q.querySelector('.quote-author').textContent === 'writer' &&
			q.querySelector('.quote-text').textContent === 'filler 149' && m.querySelector('.body').textContent === 'answering' &&
			document.getElementById('replying').hidden;
	})()`)
	var stored struct {
		Messages []struct {
			Seq     int64 `json:"seq"`
			ReplyTo int64 `json:"reply_to"`
		} `json:"messages"`
	}
	writer.call("GET", "/api/rooms/lobby/messages?after=151", nil, &stored)
	if len(stored.Messages) != 1 || stored.Messages[0].ReplyTo != 151 {
		t.Fatalf("stored %+v, want message 152 answering 151", stored.Messages)
	}

	// A reply to a message far back: its quote waits for that message, and clicking it loads
	// history back to it.
	writer.call("POST", "/api/rooms/lobby/messages", map[string]any{"body": "see the first", "reply_to": 1}, nil)
	p.waitJS("a reply to a message not on the page", `(() => {
		const q = document.querySelector('#m153 .quote');
		return q && q.classList.contains('unresolved') && q.querySelector('.quote-text').textContent === 'an earlier message';
	})()`)
	p.screenshot("room-replies")
	p.do("open the quote", chromedp.Click(chromedp.CSS(`#m153 .quote`)))
	p.waitJS("message 1 shown and the quote filled in", `(() => {
		const m = document.getElementById('m1'), q = document.querySelector('#m153 .quote');
		return m && m.classList.contains('found') && !q.classList.contains('unresolved') &&
			q.querySelector('.quote-text').textContent === 'the **plan** is ready';
	})()`)
	p.waitSeqs(1, 153)

	// An answer to one of the reader's messages is marked as a mention; others' answers are not.
	writer.call("POST", "/api/rooms/lobby/messages", map[string]any{"body": "thanks", "reply_to": 152}, nil)
	p.waitJS("the answer to alice marked", `(m => m && m.classList.contains('mention'))(document.getElementById('m154'))`)
	if evalJS[bool](p, `document.getElementById('m153').classList.contains('mention')`) {
		t.Fatal("an answer to the writer's own message is marked as a mention of alice")
	}
}

// A page live on a WebSocket moves its read mark with a frame on the socket, not a request:
// with PUT .../read refused by a proxy, the mark still follows what the page shows.
func TestReadMarkOverTheWebSocket(t *testing.T) {
	srv := startNatter(t, nil)
	px := newProxy(t, srv.url)
	px.block("/read")
	browser := newBrowser(t)
	p := newPage(t, browser, "reader")
	p.navigate(px.URL + "/rooms/lobby")
	p.signIn(px.URL, "reader", "reader's password", "register")
	p.waitLive("ws")
	writer := srv.guest("writer")
	for i := range 3 {
		writer.send("lobby", fmt.Sprint("news ", i))
	}
	p.waitSeqs(1, 3)
	p.waitReadSeq("lobby", 3)
}
