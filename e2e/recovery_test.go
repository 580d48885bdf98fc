package e2e

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"natter/app"
)

// recordConn keeps, in window.__conn, every state the connection indicator shows ("sse/live"),
// and counts, in window.__wsOpened, the WebSockets the page opens.
const recordConn = `
	window.__conn = [];
	window.__wsOpened = 0;
	window.WebSocket = class extends window.WebSocket {
		constructor(...args) {
			super(...args);
			window.__wsOpened++;
		}
	};
	document.addEventListener('DOMContentLoaded', () => {
		const c = document.getElementById('conn');
		if (!c) return;
		const note = () => {
			const s = c.dataset.transport + '/' + c.dataset.state;
			if (window.__conn[window.__conn.length - 1] !== s) window.__conn.push(s);
		};
		note();
		new MutationObserver(note).observe(c, { attributes: true });
	});`

// A page that fell back to SSE because a proxy refused WebSockets tries WebSocket again now and
// then (here every second, by ?upgrade_after=1). While it is still refused, nothing changes on
// the page; once it gets through, the page moves to it from live to live, with every message
// shown once, in order, including those sent during the switch. A page with ?transport= never
// moves.
func TestBackToWebSocket(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	px := newProxy(t, srv.url)
	px.block("/ws")
	w := srv.guest("writer")
	w.createRoom("up", "")

	p := newPage(t, browser, "reader")
	p.do("record the indicator", addScriptOnLoad(recordConn))
	p.navigate(px.URL + "/rooms/up?upgrade_after=1")
	p.signIn(px.URL, "reader", "", "guest")
	p.waitLive("sse")
	w.send("up", "on sse 1")
	p.say("on sse 2")
	p.waitSeqs(1, 2)

	// Trials while WebSocket is still refused: they fail, and the page stays live on SSE.
	p.do("mark", evalVoid(`window.__mark = window.__conn.length; window.__wsMark = window.__wsOpened`))
	p.waitJS("two WebSocket trials", `window.__wsOpened >= window.__wsMark + 2`)
	if got := evalJS[[]string](p, `window.__conn.slice(window.__mark - 1)`); !slices.Equal(got, []string{"sse/live"}) {
		t.Fatalf("while WebSocket trials failed the indicator showed %v, want it to stay sse/live", got)
	}

	// WebSocket gets through again, while messages keep coming.
	px.block()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sent := make(chan int64, 1)
	wg.Go(func() {
		var last int64
		defer func() { sent <- last }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			last = w.send("up", fmt.Sprintf("during the switch %d", i))
		}
	})
	p.waitLive("ws")
	close(stop)
	wg.Wait()
	last := <-sent
	if got := evalJS[[]string](p, `window.__conn.slice(window.__mark - 1)`); !slices.Equal(got, []string{"sse/live", "ws/live"}) {
		t.Errorf("the indicator showed %v, want sse/live then ws/live and nothing between", got)
	}
	p.say("on ws")
	p.waitMessage("reader", "on ws")
	p.waitSeqs(1, last+1)
	p.waitJS("no pending messages", `document.querySelectorAll('#pending li').length === 0`)

	// Forced to SSE, with WebSocket available: the page stays on SSE.
	f := newPage(t, browser, "forced")
	f.do("record the indicator", addScriptOnLoad(recordConn))
	f.navigate(srv.url + "/rooms/up?transport=sse&upgrade_after=0.5")
	f.signIn(srv.url, "forced", "", "guest")
	f.waitLive("sse")
	time.Sleep(3 * time.Second)
	if n := evalJS[int](f, `window.__wsOpened`); n != 0 {
		t.Errorf("a page forced to SSE opened %d WebSockets", n)
	}
	f.waitLive("sse")
}

// A stream that stops delivering without any error (a proxy or NAT dropped it silently) is
// noticed once it has been quiet for longer than the server's keepalive allows (here 3 s, by
// ?stale_after=3, with the server's keepalive every 0.5 s): the page opens a new one and resumes
// from the last seq shown.
func TestDeadStreamIsNoticed(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) { c.Server.KeepaliveIdle = 500 * time.Millisecond })
	browser := newBrowser(t)
	for _, tr := range []string{"sse", "ws"} {
		t.Run(tr, func(t *testing.T) {
			px := newProxy(t, srv.url)
			room := "stale-" + tr
			w := srv.guest("writer")
			w.createRoom(room, "")
			p := newPage(t, browser, "reader")
			p.navigate(px.URL + "/rooms/" + room + "?transport=" + tr + "&stale_after=3")
			p.signIn(px.URL, "reader-"+tr, "", "guest")
			p.waitLive(tr)
			w.send(room, "before 1")
			w.send(room, "before 2")
			p.waitSeqs(1, 2)
			// Quiet but healthy: keepalives keep the stream from looking dead.
			time.Sleep(4 * time.Second)
			if n := px.streams(); n != 1 {
				t.Fatalf("%d streams opened over a quiet, healthy connection, want 1", n)
			}

			if n := px.freeze(); n != 1 {
				t.Fatalf("froze %d streams, want the page's 1", n)
			}
			for i := 3; i <= 5; i++ {
				w.send(room, fmt.Sprintf("while frozen %d", i))
			}
			p.waitSeqs(1, 5)
			p.waitLive(tr)
			if n := px.streams(); n < 2 {
				t.Errorf("%d streams opened, want a new one after the frozen one", n)
			}
			p.say("after")
			p.waitMessage("reader-"+tr, "after")
			p.waitSeqs(1, 6)
		})
	}
}

// A message refused for sending too fast is retried before any typed after it, so the room gets
// them in the order they were typed. The link here is slow: frames reach the page 3.5 s late, so
// the refusal of the first message is still on its way when the second is typed, by which time
// the server would take it.
func TestRateLimitedSendsStayInOrder(t *testing.T) {
	srv := startNatter(t, func(c *app.Config) {
		c.Server.SendRate = 0.5 // a token every 2 s
		c.Server.SendBurst = 2
	})
	browser := newBrowser(t)
	p := newPage(t, browser, "reader")
	p.do("slow down the downlink", addScriptOnLoad(`
		window.__refused = 0;
		window.WebSocket = class extends window.WebSocket {
			set onmessage(fn) {
				this.__fn = fn;
				super.onmessage = fn && ((ev) => {
					if (ev.data.includes('"rate_limited"')) window.__refused++;
					setTimeout(() => { if (this.__fn === fn) fn.call(this, ev); }, 3500);
				});
			}
			get onmessage() { return this.__fn; }
		};`))
	p.navigate(srv.url + "/rooms/lobby?transport=ws")
	p.signIn(srv.url, "reader", "", "guest")
	p.waitLive("ws")

	// The same person, over the API, uses up the burst.
	me := srv.guest("reader")
	me.send("lobby", "api 1")
	me.send("lobby", "api 2")
	drained := time.Now()
	p.say("first")
	p.waitJS("the first message refused", `window.__refused >= 1`)
	time.Sleep(time.Until(drained.Add(2500 * time.Millisecond))) // a token is back
	p.say("second")

	p.waitMessage("reader", "second")
	p.waitSeqs(1, 4)
	bodies := evalJS[[]string](p, `[...document.querySelectorAll('#messages [data-seq] .body')].map(e => e.textContent)`)
	if want := []string{"api 1", "api 2", "first", "second"}; !slices.Equal(bodies, want) {
		t.Errorf("the room shows %q, want %q", bodies, want)
	}
	p.waitJS("no pending messages", `document.querySelectorAll('#pending li').length === 0`)
}

// A send that is never answered, on a connection that otherwise works (a proxy lost the send, or
// natter's answer to it), holds the outbox for 10 s at most (SEND_TIMEOUT in room.js): then the
// page takes the connection for broken, reconnects, resumes from the last seq shown and sends the
// outbox again with the same client_ids. The room stores each message once, in the order typed,
// and the page shows each once.
func TestUnansweredSendIsResent(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	for _, tc := range []struct {
		name, transport string
		lose            func(px *proxy)
		lost            int // what the proxy loses
	}{
		// The browser's send frame never reaches natter.
		{"ws-send-lost", "ws", func(px *proxy) {
			n := 1
			px.dropFrames(func(toServer bool, f wsFrame) bool {
				if toServer && f.Type == "send" && n > 0 {
					n--
					return true
				}
				return false
			})
		}, 1},
		// natter stores the message, but its ack and the message itself never reach the browser:
		// the resend repeats a client_id natter has, which it answers with the original.
		{"ws-answer-lost", "ws", func(px *proxy) {
			ack, msg := 1, 1
			px.dropFrames(func(toServer bool, f wsFrame) bool {
				switch {
				case !toServer && f.Type == "ack" && ack > 0:
					ack--
					return true
				case !toServer && f.Type == "message" && f.Message.Body == "first" && msg > 0:
					msg--
					return true
				}
				return false
			})
		}, 2},
		// The POST is held open and never passed on.
		{"sse-post-lost", "sse", func(px *proxy) { px.swallowPosts(1) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := newProxy(t, srv.url)
			room := "unanswered-" + tc.name
			me := "reader-" + tc.name
			w := srv.guest("writer")
			w.createRoom(room, "")
			w.send(room, "before")
			tc.lose(px)

			p := newPage(t, browser, "reader")
			p.navigate(px.URL + "/rooms/" + room + "?transport=" + tc.transport)
			p.signIn(px.URL, me, "", "guest")
			p.waitLive(tc.transport)
			p.waitSeqs(1, 1)
			p.say("first")
			p.say("second")
			p.say("third")

			// The connection still works (a newcomer shows up online), and the outbox waits for
			// its first message.
			srv.guest("visitor").join(room)
			p.waitJS("the visitor online", `!!document.querySelector('#online [data-user="visitor"]')`)
			for deadline := time.Now().Add(5 * time.Second); px.lost() < tc.lost; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the proxy lost %d frames or requests, want %d: this test would test nothing", px.lost(), tc.lost)
				}
			}
			if n := evalJS[int](p, `document.querySelectorAll('#pending li').length`); n != 3 {
				t.Errorf("%d messages pending while the first is unanswered, want all 3", n)
			}
			if n := px.streams(); n != 1 {
				t.Errorf("%d streams opened before the send timed out, want 1", n)
			}

			p.waitSeqs(1, 4)
			p.waitJS("no pending messages", `document.querySelectorAll('#pending li').length === 0`)
			p.waitLive(tc.transport)
			shown := evalJS[[]string](p, `[...document.querySelectorAll('#messages [data-seq][data-author]')].map(e => e.dataset.author + ': ' + e.querySelector('.body').textContent)`)
			want := []string{"writer: before", me + ": first", me + ": second", me + ": third"}
			if !slices.Equal(shown, want) {
				t.Errorf("the page shows %q, want %q", shown, want)
			}
			var stored struct {
				Messages []struct {
					Author string `json:"author"`
					Body   string `json:"body"`
				} `json:"messages"`
			}
			w.call("GET", "/api/rooms/"+room+"/messages?after=0", nil, &stored)
			var got []string
			for _, m := range stored.Messages {
				got = append(got, m.Author+": "+m.Body)
			}
			if !slices.Equal(got, want) {
				t.Errorf("the room stored %q, want %q", got, want)
			}
			if n := px.streams(); n < 2 {
				t.Errorf("%d streams opened, want a new one after the unanswered send", n)
			}
		})
	}
}

// TestLosingSendsFallsBack: a proxy that passes a WebSocket's other frames but loses every send
// leaves each send unanswered. Each unanswered send counts against the transport, so after two
// the page falls back to SSE, whose POSTs get through, instead of reconnecting its WebSocket
// every SEND_TIMEOUT for good. The timeout here is 6 s (?send_timeout=6): longer than the 5 s
// within which any connection that dies after going live earns a strike anyway.
func TestLosingSendsFallsBack(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	px := newProxy(t, srv.url)
	px.dropFrames(func(toServer bool, f wsFrame) bool { return toServer && f.Type == "send" })
	const room = "losing-sends"
	srv.guest("setup").createRoom(room, "")
	p := newPage(t, browser, "reader")
	p.navigate(px.URL + "/rooms/" + room + "?send_timeout=6")
	p.signIn(px.URL, "reader", "", "guest")
	p.waitLive("ws")
	p.say("through at last")
	p.waitLive("sse")
	p.waitMessage("reader", "through at last")
	if n := px.lost(); n < 2 {
		t.Errorf("the proxy lost %d sends, want the 2 that earned the fallback", n)
	}
	// Still chatting, both ways.
	p.say("and again")
	p.waitMessage("reader", "and again")
	seq := srv.guest("writer").send(room, "from outside")
	p.waitMessage("writer", "from outside")
	p.waitSeqs(1, seq)
}
