package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"natter/app"
	"natter/ws"
)

// Each transport forced with ?transport= carries messages both ways and says so in the indicator.
func TestForcedTransports(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	for _, tr := range []string{"ws", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			room := "via-" + tr
			srv.guest("setup-"+tr).createRoom(room, "Forced "+tr)
			a := newPage(t, browser, "a-"+tr)
			b := newPage(t, browser, "b-"+tr)
			for _, p := range []*page{a, b} {
				p.navigate(srv.url + "/rooms/" + room + "?transport=" + tr)
				p.signIn(srv.url, p.name, "", "guest")
				p.waitLive(tr)
			}
			if tr != "poll" {
				// WebSocket and SSE readers hold a connection, so the server lists them.
				a.waitJS("b online", fmt.Sprintf(`!!document.querySelector('#online [data-user=%q]')`, b.name))
			}
			a.say("ping over " + tr)
			b.waitMessage(a.name, "ping over "+tr)
			b.say("pong over " + tr)
			a.waitMessage(b.name, "pong over "+tr)
			a.waitSeqs(1, 2)
			b.waitSeqs(1, 2)
			a.waitJS("no pending messages", `document.querySelectorAll('#pending li').length === 0`)
			if got := evalJS[string](a, `document.getElementById('conn').dataset.transport`); got != tr {
				t.Errorf("indicator names %q, want %q", got, tr)
			}
		})
	}
}

// A proxy that refuses WebSocket upgrades sends the page to SSE; one that also refuses event
// streams sends it to long-polling. Either way it chats.
func TestFallbackWhenTransportsAreBlocked(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	for _, tc := range []struct {
		name    string
		blocked []string // path suffixes the proxy refuses
		want    string
	}{
		{"no-websocket", []string{"/ws"}, "sse"},
		{"no-websocket-no-sse", []string{"/ws", "/events"}, "poll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := newProxy(t, srv.url)
			px.block(tc.blocked...)

			room := "fallback-" + tc.want
			srv.guest("setup").createRoom(room, "")
			p := newPage(t, browser, "reader")
			p.navigate(px.URL + "/rooms/" + room)
			p.signIn(px.URL, "reader-"+tc.want, "", "guest")
			p.waitLive(tc.want)
			p.say("through the proxy")
			p.waitMessage("reader-"+tc.want, "through the proxy")
			seq := srv.guest("writer").send(room, "from outside")
			p.waitMessage("writer", "from outside")
			p.waitSeqs(1, seq)
		})
	}
}

// The server restarts mid-conversation. The page reconnects on its own, resumes from the last seq
// it showed (no gap, no duplicate, no reload), and sends what was typed while it was down.
func TestResumeAfterServerRestart(t *testing.T) {
	browser := newBrowser(t)
	for _, tr := range []string{"ws", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			srv := startNatter(t, nil)
			writer := srv.guest("writer")
			writer.createRoom("r", "Restart")
			for i := 1; i <= 5; i++ {
				writer.send("r", fmt.Sprintf("before %d", i))
			}
			p := newPage(t, browser, "reader")
			p.navigate(srv.url + "/rooms/r?transport=" + tr)
			p.signIn(srv.url, "reader", "", "guest")
			p.waitLive(tr)
			p.waitSeqs(1, 5)
			p.do("mark the page", evalVoid(`window.__sameDocument = true`))

			srv.close()
			p.waitJS("the indicator to show the outage",
				`['reconnecting', 'offline'].includes(document.getElementById('conn').dataset.state)`)
			p.say("typed while down")
			p.waitJS("the message shown as pending", `(() => {
				const li = document.querySelector('#pending li[data-client-id]');
				return li && li.textContent.includes('typed while down') && !li.hasAttribute('data-seq');
			})()`)
			if tr == "ws" {
				p.screenshot("room-reconnecting-desktop")
			}

			srv.open()
			writer = srv.guest("writer") // sessions survive, but the test's token is simplest anew
			for i := 6; i <= 8; i++ {
				writer.send("r", fmt.Sprintf("after %d", i))
			}
			p.waitLive(tr)
			p.waitSeqs(1, 9)
			p.waitJS("the pending message settled", `document.querySelectorAll('#pending li').length === 0`)
			if n := evalJS[int](p, `[...document.querySelectorAll('#messages [data-seq] .body')].filter(e => e.textContent === 'typed while down').length`); n != 1 {
				t.Errorf("the message typed while down shows %d times, want once", n)
			}
			if !evalJS[bool](p, `window.__sameDocument === true`) {
				t.Errorf("the page reloaded instead of resuming")
			}
			// And the room goes on.
			writer.send("r", "after 10")
			p.waitSeqs(1, 10)
		})
	}
}

// A room whose log was lost comes back with a new epoch: the page drops what it showed and loads
// the new log in place, rather than mixing two logs or waiting for seqs that will never come.
func TestNewEpochReloadsTheLog(t *testing.T) {
	browser := newBrowser(t)
	srv := startNatter(t, nil)
	p := newPage(t, browser, "reader")
	p.signIn(srv.url, "reader", "", "guest")

	// Two copies of one database, so the session is valid in both; each then gets its own room
	// "r", with its own epoch.
	oldDir := srv.cfg.DataDir
	srv.close()
	newDir := t.TempDir()
	copyDir(t, oldDir, newDir)
	srv.cfg.DataDir = newDir
	srv.open()
	w := srv.guest("writer")
	w.createRoom("r", "")
	w.send("r", "new log 1")
	w.send("r", "new log 2")
	srv.close()

	srv.cfg.DataDir = oldDir
	srv.open()
	w = srv.guest("writer")
	w.createRoom("r", "")
	for i := 1; i <= 4; i++ {
		w.send("r", fmt.Sprintf("old log %d", i))
	}
	p.navigate(srv.url + "/rooms/r")
	p.waitLive("ws")
	p.waitSeqs(1, 4)
	p.do("mark the page", evalVoid(`window.__sameDocument = true`))

	srv.close()
	srv.cfg.DataDir = newDir
	srv.open()
	p.waitMessage("writer", "new log 2")
	p.waitSeqs(1, 2)
	p.waitLive("ws")
	if n := evalJS[int](p, `document.querySelectorAll('#messages [data-seq]').length`); n != 2 {
		t.Errorf("%d messages shown after the new epoch, want the new log's 2", n)
	}
	if !evalJS[bool](p, `window.__sameDocument === true`) {
		t.Errorf("the document reloaded; the client should reload the log in place")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A WebSocket reader that falls behind is closed with 4008 "slow"; the page reconnects at once
// and resumes after the last seq it showed. A queue bound smaller than one long message makes
// every long live message overflow it, while the backlog replay after reconnecting still gets
// through, since replay waits for the reader instead of counting as slowness.
func TestSlowConsumerResumes(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) {
		c.Server.QueueBytes = 400
		c.Server.SendRate = -1
	})
	browser := newBrowser(t)
	p := newPage(t, browser, "reader")
	p.do("record WebSocket close codes", addScriptOnLoad(`
		window.__wsCloses = [];
		window.WebSocket = class extends window.WebSocket {
			constructor(...args) {
				super(...args);
				this.addEventListener('close', (e) => window.__wsCloses.push(e.code));
			}
		};`))
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "reader", "", "guest")
	p.waitLive("ws")

	w := srv.guest("writer")
	long := strings.Repeat("long ", 120)
	for i := 1; i <= 4; i++ {
		w.send("lobby", fmt.Sprintf("%d: %s", i, long))
		w.send("lobby", fmt.Sprintf("short %d", i))
	}
	p.waitSeqs(1, 8)
	p.waitLive("ws")
	closes := evalJS[[]int](p, `window.__wsCloses`)
	if !slices.Contains(closes, 4008) {
		t.Errorf("WebSocket close codes %v: the server never closed the reader as slow, so this test tested nothing", closes)
	}
}

// addScriptOnLoad runs source in every document the tab loads from now on, before the page's
// own scripts.
func addScriptOnLoad(source string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: source})
		return err
	})
}

// A user at the server's limit of open connections: the page's long-poll is refused (429 with
// Retry-After). The page says why in the indicator's title, waits as asked instead of retrying
// at once, and goes live once a place is free.
func TestRefusedAtTheConnectionLimit(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.MaxUserConns = 1 })
	browser := newBrowser(t)
	holder := srv.guest("ann")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	held, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.url, "http")+"/ws", http.Header{"Authorization": {"Bearer " + holder.token}})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	p := newPage(t, browser, "ann")
	p.navigate(srv.url + "/rooms/lobby?transport=poll")
	p.signIn(srv.url, "ann", "", "guest")
	p.waitJS("the refusal shown", `(c => c.dataset.state === 'reconnecting' && c.title.includes('open connection'))(document.getElementById('conn'))`)
	if n := srv.main.Server().ConnCount(); n != 1 {
		t.Fatalf("%d connections, want only the holder's", n)
	}
	held.Close()
	p.waitLive("poll")
	srv.guest("bob").send("lobby", "once there was room")
	p.waitMessage("bob", "once there was room")
}
