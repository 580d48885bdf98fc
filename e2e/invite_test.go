package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Invite links in the browser: a member of a private room makes a one-use link on the room
// page; another account opens it, is asked, joins and lands in the room, live; a third finds
// the link used up. The links that still work are listed, and their maker revokes one.
func TestInviteInTheBrowser(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	carol, bob, dan := newPage(t, browser, "carol"), newPage(t, browser, "bob"), newPage(t, browser, "dan")
	for name, p := range map[string]*page{"carol": carol, "bob": bob, "dan": dan} {
		p.signIn(srv.url, name, name+"'s password", "register")
	}
	carol.createRoom("club", true)
	carol.waitJS("the private room", `location.pathname === '/rooms/club' && !!document.getElementById('make-invite')`)
	carol.waitLive("ws")
	carol.say("welcome to the club")
	carol.do("make a one-use link", chromedp.SetValue(chromedp.CSS(`#invite-uses`), "1"), chromedp.Click(chromedp.CSS(`#make-invite button[type=submit]`)))
	carol.waitJS("the new link, and the list of links", `!document.getElementById('invite-new').hidden &&
		document.getElementById('invite-link').value.startsWith(location.origin + '/join/club/') &&
		document.querySelectorAll('#invites li').length === 1 && /^yours, until .*, 0 of 1 used/.test(document.querySelector('#invites li').textContent)`)
	carol.screenshot("room-invites")
	link := evalJS[string](carol, `document.getElementById('invite-link').value`)
	if !strings.HasPrefix(link, srv.url+"/join/club/") {
		t.Fatalf("the link %q is not this server's join page", link)
	}

	bob.navigate(link)
	bob.waitJS("the join page", `!!document.getElementById('join-room') && /#club/.test(document.querySelector('h1').textContent)`)
	bob.screenshot("join")
	bob.do("join", chromedp.Click(chromedp.CSS(`#join-room button[type=submit]`)))
	bob.waitJS("the room, bob a member", `location.pathname === '/rooms/club'`)
	bob.waitLive("ws")
	bob.waitMessage("carol", "welcome to the club")
	bob.say("thanks for the link")
	carol.waitMessage("bob", "thanks for the link")

	dan.navigate(link)
	dan.waitJS("the used link's page says it no longer works, with no Join", `!!document.getElementById('join-gone') && !document.getElementById('join-room')`)

	// The used link left the list; a new one is revoked by its maker.
	carol.navigate(srv.url + "/rooms/club")
	carol.waitJS("bob among the members, no link listed", `[...document.querySelectorAll('#members li')].map((li) => li.dataset.user).join() === 'bob,carol' &&
		document.getElementById('invites').dataset.count === '0'`)
	carol.do("make a link for anyone", chromedp.Click(chromedp.CSS(`#make-invite button[type=submit]`)))
	carol.waitJS("listed", `document.querySelectorAll('#invites li').length === 1`)
	second := evalJS[string](carol, `document.getElementById('invite-link').value`)
	dan.navigate(second)
	dan.waitJS("the join page", `!!document.getElementById('join-room')`)
	// Revoked while dan's page asks: Join says why it failed.
	carol.do("revoke it", chromedp.Click(chromedp.CSS(`#invites li button`)))
	carol.waitJS("none listed", `document.querySelectorAll('#invites li').length === 0`)
	dan.do("join with a revoked link", chromedp.Click(chromedp.CSS(`#join-room button[type=submit]`)))
	dan.waitJS("the refusal", `!document.getElementById('join-error').hidden && /revoked/.test(document.getElementById('join-error').textContent) && location.pathname.startsWith('/join/')`)
}
