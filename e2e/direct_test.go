package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	chat "natter"
)

// Direct conversations in the browser: ann opens one with dave from her room list ("Message
// someone"), and it is a room named for him; dave finds it in his list as "@ann" and answers;
// while ann's page is in the background with notifications on, each of dave's messages notifies
// her, mention or not (its text as shown, without formatting markers), and once she mutes it only
// a mention does; a third account sees neither the conversation in its list nor its page.
// From a room, a name among those online opens the conversation with that account; and a page
// open on another room notifies of a message in the conversation.
func TestDirectConversationInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	ann, dave, carol := newPage(t, browser, "ann"), newPage(t, browser, "dave"), newPage(t, browser, "carol")
	for name, p := range map[string]*page{"ann": ann, "dave": dave, "carol": carol} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	room := chat.DirectRoomName("ann", "dave")

	open := func(name string) {
		ann.do("open a conversation with "+name,
			evalVoid(`document.getElementById('direct-name').value = ''`),
			chromedp.SendKeys(chromedp.CSS(`#direct-name`), name),
			chromedp.Click(chromedp.CSS(`#open-direct button[type=submit]`)),
		)
	}
	ann.waitJS("the form", `!!document.getElementById('open-direct')`)
	open("nobody")
	ann.waitJS("the refusal", `!document.getElementById('direct-error').hidden && /no account named "nobody"/.test(document.getElementById('direct-error').textContent)`)
	open("dave")
	ann.waitJS("the conversation's page", fmt.Sprintf(`location.pathname === '/rooms/%s' &&
		document.getElementById('room-title').textContent === '@dave' &&
		!!document.querySelector('.room-head .room-direct') && !document.getElementById('rename') &&
		!document.getElementById('add-member') &&
		document.getElementById('body').placeholder === 'Message @dave' && document.title.startsWith('@dave')`, room))
	ann.waitLive("ws")
	ann.waitJS("the start of the log", `document.getElementById('log-start').textContent === 'This is the start of your conversation with dave.'`)
	ann.say("hi dave")
	ann.screenshot("room-direct")

	dave.navigate(srv.url + "/")
	dave.waitJS("the conversation in dave's list", fmt.Sprintf(`(() => {
		const li = document.querySelector('#rooms li[data-room="%s"]');
		return !!li && li.querySelector('.room-title').textContent === '@ann' && !!li.querySelector('.room-direct');
	})()`, room))
	// Rooms first by name, then conversations by who; a room made meanwhile goes in its place.
	order := `[...document.querySelectorAll('#rooms > li[data-room]')].map((li) => li.dataset.with ? '@' + li.dataset.with : li.dataset.room).join()`
	if got := evalJS[string](dave, order); got != "lobby,@ann" {
		t.Fatalf("dave's list: %s, want the lobby, then the conversation", got)
	}
	srv.guest("gil").createRoom("zeta", "Zeta")
	dave.setVisibility("hidden")
	dave.setVisibility("visible") // the list refreshes when shown
	dave.waitJS("zeta before the conversation", order+` === 'lobby,zeta,@ann'`)
	dave.screenshot("rooms-direct")
	dave.do("open it", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#rooms li[data-room="%s"] a`, room))))
	dave.waitLive("ws")
	dave.waitMessage("ann", "hi dave")

	ann.grantNotifications(srv.url)
	ann.do("record notifications", evalVoid(`window.__notes = []; const Real = window.Notification;
		window.Notification = class extends Real { constructor(title, opts) { super(title, opts); window.__notes.push(title + ': ' + opts.body); } }`))
	ann.do("turn notifications on", chromedp.Click(chromedp.CSS(`#notify`)))
	ann.waitJS("notifications on", `document.getElementById('notify').getAttribute('aria-pressed') === 'true'`)
	ann.setVisibility("hidden")
	dave.say("hi **ann**")
	ann.waitMessage("dave", "hi ann")
	if notes := evalJS[[]string](ann, `window.__notes`); fmt.Sprint(notes) != "[dave: hi ann]" {
		t.Fatalf("notifications %q, want one for dave's message, as shown (no markers)", notes)
	}
	ann.setVisibility("visible")

	// Muted, the conversation notifies only of what names ann.
	ann.do("mute the conversation", chromedp.Click(chromedp.CSS(`#mute`)))
	ann.waitJS("Muted", `document.getElementById('mute').getAttribute('aria-pressed') === 'true'`)
	ann.do("clear the notifications", evalVoid(`window.__notes = []`))
	ann.setVisibility("hidden")
	dave.say("still there?")
	dave.say("@ann ping")
	ann.waitMessage("dave", "@ann ping")
	if notes := evalJS[[]string](ann, `window.__notes`); fmt.Sprint(notes) != "[dave: @ann ping]" {
		t.Fatalf("notifications %q of the muted conversation, want the mention's alone", notes)
	}
	ann.setVisibility("visible")
	ann.do("unmute it", chromedp.Click(chromedp.CSS(`#mute`)))
	ann.waitJS("Mute", `document.getElementById('mute').getAttribute('aria-pressed') === 'false'`)

	// Another pair's room list is its own; from a room page, the list beside it names it too.
	carol.navigate(srv.url + "/")
	carol.waitJS("carol's room list", `!!document.querySelector('#rooms li[data-room="lobby"]')`)
	if evalJS[bool](carol, fmt.Sprintf(`!!document.querySelector('#rooms li[data-room="%s"]')`, room)) {
		t.Fatal("carol's room list has ann and dave's conversation")
	}
	carol.navigate(srv.url + "/rooms/" + room)
	carol.waitJS("the not-found page", `!document.querySelector('main.room') && /no room named/.test(document.body.textContent)`)
	dave.navigate(srv.url + "/rooms/lobby")
	dave.waitJS("the list beside the lobby", fmt.Sprintf(`document.querySelector('.nav-rooms li[data-room="%s"] .room-title')?.textContent === '@ann'`, room))

	// Who is online opens a conversation too: a guest has none; an account's opens.
	srv.guest("gus").join("lobby")
	carol.navigate(srv.url + "/rooms/lobby")
	carol.waitLive("ws")
	dave.waitJS("carol and gus online", `!!document.querySelector('#online li[data-user="carol"] button.open-direct') &&
		!!document.querySelector('#online li[data-user="gus"] button.open-direct') && !document.querySelector('#online li[data-user="dave"] button')`)
	dave.do("message gus", chromedp.Click(chromedp.CSS(`#online li[data-user="gus"] button`)))
	dave.waitJS("the refusal", `/no account named "gus"/.test(document.getElementById('online-error').textContent) && !document.getElementById('online-error').hidden`)
	dave.do("message carol", chromedp.Click(chromedp.CSS(`#online li[data-user="carol"] button`)))
	dave.waitJS("the conversation with carol", fmt.Sprintf(`location.pathname === '/rooms/%s' && document.getElementById('room-title').textContent === '@carol'`, chat.DirectRoomName("carol", "dave")))

	// On another room's page, ann's WebSocket follows her conversations: dave's next message in
	// theirs notifies her at once and counts beside the lobby.
	ann.navigate(srv.url + "/rooms/lobby")
	ann.waitLive("ws")
	ann.do("record notifications", evalVoid(`window.__notes = []; const Real = window.Notification;
		window.Notification = class extends Real { constructor(title, opts) { super(title, opts); window.__notes.push(title + ': ' + opts.body); } }`))
	dave.navigate(srv.url + "/rooms/" + room)
	dave.waitLive("ws")
	dave.waitJS("ann online in the conversation (her lobby page follows it)", `!!document.querySelector('#online li[data-user="ann"]')`)
	dave.say("are you there?")
	ann.waitJS("a notification from dave", `window.__notes.length === 1`)
	if notes := evalJS[[]string](ann, `window.__notes`); fmt.Sprint(notes) != "[dave: are you there?]" {
		t.Fatalf("notifications on the lobby page %q, want dave's message", notes)
	}
	ann.waitJS("one new beside the lobby", fmt.Sprintf(`document.querySelector('#rooms li[data-room="%s"] .room-unread')?.dataset.unread === '1'`, room))
	// Muted (from elsewhere), the conversation still counts beside the lobby but notifies no more.
	ann.do("mute the conversation", evalVoid(fmt.Sprintf(`fetch('/api/rooms/%s/mute', {method: 'PUT'}).then((r) => { window.__muted = r.status })`, room)))
	ann.waitJS("muted", `window.__muted === 204`)
	ann.setVisibility("hidden")
	ann.setVisibility("visible") // the list refreshes when shown
	ann.waitJS("the conversation muted beside the lobby", fmt.Sprintf(`document.querySelector('#rooms li[data-room="%s"]').classList.contains('muted')`, room))
	dave.say("hello?")
	ann.waitJS("two new beside the lobby", fmt.Sprintf(`document.querySelector('#rooms li[data-room="%s"] .room-unread')?.dataset.unread === '2'`, room))
	if notes := evalJS[[]string](ann, `window.__notes`); fmt.Sprint(notes) != "[dave: are you there?]" {
		t.Fatalf("notifications on the lobby page %q after the conversation was muted, want the one before", notes)
	}
	ann.do("unmute it", evalVoid(fmt.Sprintf(`fetch('/api/rooms/%s/mute', {method: 'DELETE'}).then((r) => { window.__unmuted = r.status })`, room)))
	ann.waitJS("unmuted", `window.__unmuted === 204`)

	// Dave closes his conversation with ann: his room list leaves it out until ann says
	// something new in it. A conversation closed elsewhere leaves an open list when it refreshes.
	dave.do("close the conversation", chromedp.Click(chromedp.CSS(`#close-direct`)))
	withCarol := chat.DirectRoomName("carol", "dave")
	dave.waitJS("dave's room list without it", fmt.Sprintf(`location.pathname === '/' && !!document.querySelector('#rooms li[data-room="%s"]') &&
		!document.querySelector('#rooms li[data-room="%s"]')`, withCarol, room))
	dave.do("close the one with carol from elsewhere", evalVoid(`fetch('/api/dms/carol', {method: 'DELETE'})`))
	dave.setVisibility("hidden")
	dave.setVisibility("visible")
	dave.waitJS("the list without the one with carol", fmt.Sprintf(`!document.querySelector('#rooms li[data-room="%s"]')`, withCarol))
	ann.navigate(srv.url + "/rooms/" + room)
	ann.waitLive("ws")
	ann.say("are you still there?")
	ann.waitMessage("ann", "are you still there?")
	dave.setVisibility("hidden")
	dave.setVisibility("visible")
	dave.waitJS("the conversation back in dave's list", fmt.Sprintf(`document.querySelector('#rooms li[data-room="%s"] .room-title')?.textContent === '@ann'`, room))

	// A room page follows a conversation that its list's refresh brings back, from then on.
	dave.do("close it again", evalVoid(`fetch('/api/dms/ann', {method: 'DELETE'})`))
	dave.navigate(srv.url + "/rooms/lobby")
	dave.waitLive("ws")
	dave.waitJS("the lobby page without the conversation", fmt.Sprintf(`!document.querySelector('#rooms li[data-room="%s"]')`, room))
	dave.grantNotifications(srv.url)
	dave.do("record notifications", evalVoid(`window.__notes = []; const Real = window.Notification;
		window.Notification = class extends Real { constructor(title, opts) { super(title, opts); window.__notes.push(title + ': ' + opts.body); } }`))
	dave.do("turn notifications on", chromedp.Click(chromedp.CSS(`#notify`)))
	dave.waitJS("notifications on", `document.getElementById('notify').getAttribute('aria-pressed') === 'true'`)
	ann.say("one")
	ann.waitMessage("ann", "one")
	dave.setVisibility("hidden")
	dave.setVisibility("visible")
	dave.waitJS("the conversation back beside the lobby", fmt.Sprintf(`!!document.querySelector('#rooms li[data-room="%s"]')`, room))
	ann.say("two")
	dave.waitJS("a notification of ann's next message", `window.__notes.includes('ann: two')`)
}
