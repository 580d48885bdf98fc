package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Edits and deletions in the browser: the author edits a message in place (Enter saves) and
// deletes another (a second click confirms); everyone else sees the change live, and a page
// loaded later shows the same, with the changes themselves not shown as messages. Only one's own
// messages have Edit and Delete, and only for accounts.
func TestEditAndDeleteInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	alice, bob := newPage(t, browser, "alice"), newPage(t, browser, "bob")
	for name, p := range map[string]*page{"alice": alice, "bob": bob} {
		p.navigate(srv.url + "/rooms/lobby")
		p.signIn(srv.url, name, name+"'s password", "register")
		p.waitLive("ws")
	}
	alice.say("helo wrld")
	alice.say("sent by mistake")
	bob.say("bob's own")
	for _, p := range []*page{alice, bob} {
		p.waitSeqs(1, 3)
	}
	if n := evalJS[int](bob, `document.querySelectorAll('#m1 .own-actions, #m2 .own-actions').length`); n != 0 {
		t.Fatalf("bob has %d Edit/Delete boxes on alice's messages, want none", n)
	}

	// Without hover (headless Chromium, as a phone), a message's tools show once it is tapped.
	if evalJS[bool](alice, `matchMedia('(hover: none)').matches && !!document.querySelector('#m1 .own-actions button').offsetParent`) {
		t.Fatal("Edit and Delete show on every message without hover, before any is tapped")
	}
	alice.tapMessage(1)
	alice.do("edit the first message",
		chromedp.Click(chromedp.CSS(`#m1 .own-actions button:first-child`)),
		chromedp.WaitVisible(chromedp.CSS(`#m1 .edit-box textarea`)),
		evalVoid(`document.querySelector('#m1 .edit-box textarea').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#m1 .edit-box textarea`), "hello world"),
		pressEnter,
	)
	// The box closes when the edit is stored: tapping before would aim at a message still moving.
	alice.waitJS("the edit saved", `!document.querySelector('#m1 .edit-box') && document.querySelector('#m1 .body').textContent === 'hello world'`)
	alice.tapMessage(2)
	alice.do("delete the second", chromedp.Click(chromedp.CSS(`#m2 .own-actions button:last-child`)),
		chromedp.Click(chromedp.CSS(`#m2 .own-actions button:last-child`)))
	const changed = `(() => {
		const one = document.querySelector('#m1'), two = document.querySelector('#m2');
		return one.querySelector('.body').textContent === 'hello world' && !!one.querySelector('.edited') &&
			two.classList.contains('deleted') && two.querySelector('.body').textContent === 'This message was deleted.' &&
			!document.querySelector('#m1 .edit-box');
	})()`
	alice.waitJS("the changes on alice's page", changed)
	bob.waitJS("the changes on bob's page, live", changed)
	bob.do("open the edited message's versions", chromedp.Click(chromedp.CSS(`#m1 .edited`)))
	bob.waitJS("the versions, oldest first", `(() => {
		const items = [...document.querySelectorAll('#m1 > .versions li .version-text')].map((e) => e.textContent);
		return items.length === 2 && items[0] === 'helo wrld' && items[1] === 'hello world' &&
			document.querySelector('#m1 .edited').getAttribute('aria-expanded') === 'true';
	})()`)
	bob.screenshot("room-edited")
	bob.do("close them", chromedp.Click(chromedp.CSS(`#m1 .edited`)))
	bob.waitJS("the versions closed", `!document.querySelector('#m1 > .versions')`)

	bob.navigate(srv.url + "/rooms/lobby")
	bob.waitLive("ws")
	bob.waitJS("the changes after a reload", changed)
	if got := bob.seqs(); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("messages shown after the reload %v, want 1, 2, 3 (the edit and the deletion, 4 and 5, change them)", got)
	}
	// Up in an empty message box edits one's last message; Escape leaves it as it was.
	bob.do("press Up in the empty box", chromedp.Focus(chromedp.CSS(`textarea[name=body]`)), pressKey("ArrowUp", 38))
	bob.waitJS("bob's last message open to edit", `!!document.querySelector('#m3 .edit-box textarea') && document.activeElement === document.querySelector('#m3 .edit-box textarea')`)
	bob.do("press Escape", pressKey("Escape", 27))
	bob.waitJS("the edit box closed", `!document.querySelector('#m3 .edit-box') && document.querySelector('#m3 .body').textContent === "bob's own"`)
	bob.say("after the changes")
	alice.waitMessage("bob", "after the changes")
	if id := evalJS[string](alice, `document.querySelector('#messages [data-seq]:last-child').id`); id != "m6" {
		t.Fatalf("bob's new message is %s on alice's page, want m6 (seqs 4 and 5 are the changes)", id)
	}

	// A guest's page offers no Edit or Delete, even on the guest's own messages.
	gus := newPage(t, browser, "gus")
	gus.navigate(srv.url + "/rooms/lobby")
	gus.signIn(srv.url, "gus", "", "guest")
	gus.waitLive("ws")
	gus.say("a guest's words")
	gus.waitMessage("gus", "a guest's words")
	if n := evalJS[int](gus, `document.querySelectorAll('#messages .own-actions').length`); n != 0 {
		t.Fatalf("a guest's page has %d Edit/Delete boxes, want none", n)
	}
}

// The account that created a room may delete anyone's message in it from the page (Delete only,
// no Edit); everyone sees who deleted it. In a room it did not create it gets neither.
func TestRoomCreatorDeletesInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	bob := srv.guest("bob")
	alice := newPage(t, newBrowser(t), "alice")
	alice.signIn(srv.url, "alice", "alice's password", "register")
	alice.createRoom("ops", false)
	alice.waitLive("ws")
	bob.send("ops", "buy now")
	bob.send("lobby", "hello lobby")
	alice.waitMessage("bob", "buy now")
	if n := evalJS[int](alice, `document.querySelectorAll('#m1 .own-actions button').length`); n != 1 {
		t.Fatalf("%d buttons on bob's message for the room's creator, want Delete only", n)
	}
	alice.tapMessage(1)
	alice.do("delete bob's message", chromedp.Click(chromedp.CSS(`#m1 .own-actions button`)), chromedp.Click(chromedp.CSS(`#m1 .own-actions button`)))
	alice.waitJS("deleted, by alice", `document.querySelector('#m1 .body').textContent === 'This message was deleted by alice.'`)

	alice.navigate(srv.url + "/rooms/lobby")
	alice.waitMessage("bob", "hello lobby")
	if n := evalJS[int](alice, `document.querySelectorAll('#messages .own-actions').length`); n != 0 {
		t.Fatalf("%d Delete buttons in a room alice did not create, want none", n)
	}
}
