package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// The account page: a password change signs out the account's other browsers at once (the one
// in a room is sent to sign in when its WebSocket closes) and keeps this one; only the new
// password signs in; "Sign out everywhere" ends every session.
func TestAccountPage(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	laptop := newPage(t, browser, "laptop")
	laptop.signIn(srv.url, "alice", "first password", "register")

	phone := newPage(t, browser, "phone")
	phone.navigate(srv.url + "/rooms/lobby")
	phone.signIn(srv.url, "alice", "first password", "signin")
	phone.waitLive("ws")

	laptop.do("open the account page", chromedp.Click(chromedp.CSS(`a.whoami`)))
	laptop.waitJS("the account page", `location.pathname === '/account'`)
	laptop.do("fill in the password form",
		chromedp.WaitVisible(chromedp.CSS(`#current-password`)),
		chromedp.SendKeys(chromedp.CSS(`#current-password`), "wrong password"),
		chromedp.SendKeys(chromedp.CSS(`#new-password`), "second password"),
		chromedp.Click(chromedp.CSS(`#change-password button[type=submit]`)),
	)
	laptop.waitJS("the wrong current password refused", `!document.getElementById('change-password-error').hidden && document.getElementById('change-password-error').textContent.includes('not right')`)
	laptop.do("correct the current password",
		evalVoid(`document.getElementById('current-password').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#current-password`), "first password"),
		chromedp.Click(chromedp.CSS(`#change-password button[type=submit]`)),
	)
	laptop.waitJS("the change confirmed", `!document.getElementById('change-password-done').hidden`)
	laptop.screenshot("account-desktop")

	phone.waitJS("the phone sent to sign in", `location.pathname === '/signin'`)
	laptop.navigate(srv.url + "/")
	if path := laptop.path(); path != "/" {
		t.Fatalf("the laptop, which changed the password, is at %s, want / (still signed in)", path)
	}

	phone.do("sign in with the old password",
		chromedp.WaitVisible(chromedp.CSS(`#signin input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=name]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=password]`), "first password"),
		chromedp.Click(chromedp.CSS(`#signin button[value=signin]`)),
	)
	phone.waitJS("the old password refused", `!document.getElementById('signin-error').hidden`)
	phone.do("sign in with the new password",
		evalVoid(`document.querySelector('#signin input[name=password]').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=password]`), "second password"),
		chromedp.Click(chromedp.CSS(`#signin button[value=signin]`)),
	)
	phone.waitJS("the phone back in the room", `location.pathname === '/rooms/lobby'`)
	phone.waitLive("ws")

	laptop.navigate(srv.url + "/account")
	laptop.do("sign out everywhere", chromedp.Click(chromedp.CSS(`#signout-everywhere button[type=submit]`)))
	laptop.waitJS("the laptop signed out", `location.pathname === '/signin'`)
	phone.waitJS("the phone signed out", `location.pathname === '/signin'`)
}
