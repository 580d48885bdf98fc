package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Private rooms in the browser: an account creates one with the Private box, adds another
// account on the room page, and that account then finds it in its room list and opens it; a
// third account sees neither the room in its list nor its page.
func TestPrivateRoomInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	carol, bob, dan := newPage(t, browser, "carol"), newPage(t, browser, "bob"), newPage(t, browser, "dan")
	for name, p := range map[string]*page{"carol": carol, "bob": bob, "dan": dan} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	carol.createRoom("secret", true)
	carol.waitJS("the private room, carol its only member", `location.pathname === '/rooms/secret' &&
		!!document.querySelector('.room-head .room-private') &&
		[...document.querySelectorAll('#members li')].map((li) => li.dataset.user).join() === 'carol'`)
	carol.waitLive("ws")
	carol.say("for bob's eyes")

	bob.navigate(srv.url + "/")
	bob.waitJS("bob's room list", `!!document.querySelector('#rooms li[data-room="lobby"]')`)
	if evalJS[bool](bob, `!!document.querySelector('#rooms li[data-room="secret"]')`) {
		t.Fatal("bob sees the private room before he is added")
	}
	carol.do("add nobody", chromedp.SendKeys(chromedp.CSS(`#member-name`), "nobody"), chromedp.Click(chromedp.CSS(`#add-member button`)))
	carol.waitJS("the refusal", `!document.getElementById('member-error').hidden && /no account named "nobody"/.test(document.getElementById('member-error').textContent)`)
	carol.do("add bob",
		evalVoid(`document.getElementById('member-name').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#member-name`), "bob"),
		chromedp.Click(chromedp.CSS(`#add-member button`)),
	)
	carol.waitJS("bob a member", `[...document.querySelectorAll('#members li')].map((li) => li.dataset.user).join() === 'bob,carol' && document.getElementById('member-error').hidden`)
	carol.screenshot("room-private")

	bob.setVisibility("hidden")
	bob.setVisibility("visible")
	bob.waitJS("the private room in bob's list", `!!document.querySelector('#rooms li[data-room="secret"] .room-private')`)
	bob.do("open it", chromedp.Click(chromedp.CSS(`#rooms li[data-room="secret"] a`)))
	bob.waitLive("ws")
	bob.waitMessage("carol", "for bob's eyes")

	// Carol removes bob: his page says the room is gone for him.
	carol.do("remove bob", chromedp.Click(chromedp.CSS(`#members li[data-user="bob"] button`)))
	carol.waitJS("bob removed", `[...document.querySelectorAll('#members li')].map((li) => li.dataset.user).join() === 'carol'`)
	bob.waitJS("bob's page closed", `/no longer exists/.test(document.body.textContent)`)

	dan.navigate(srv.url + "/rooms/secret")
	dan.waitJS("the not-found page", `!document.querySelector('main.room') && /no room named/.test(document.body.textContent)`)
	dan.navigate(srv.url + "/")
	if evalJS[bool](dan, `!!document.querySelector('#rooms li[data-room="secret"]')`) {
		t.Fatal("dan's room list has the private room")
	}
}
