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

// Deleting an account from its page: a wrong password is refused; the right one, with "erase"
// ticked, signs out every browser of the account (the one in a room too), the account's message
// reads as deleted to others, and signing in again under the name is refused.
func TestDeleteAccountPage(t *testing.T) {
	srv := startNatter(t, nil)
	browser := newBrowser(t)
	laptop, phone, other := newPage(t, browser, "laptop"), newPage(t, browser, "phone"), newPage(t, browser, "other")
	laptop.signIn(srv.url, "alice", "alice's password", "register")
	other.signIn(srv.url, "bob", "bob's password", "register")
	phone.navigate(srv.url + "/rooms/lobby")
	phone.signIn(srv.url, "alice", "alice's password", "signin")
	phone.waitLive("ws")
	phone.say("my number is 555-0100")
	other.navigate(srv.url + "/rooms/lobby")
	other.waitLive("ws")
	other.waitSeqs(1, 1)

	laptop.navigate(srv.url + "/account")
	laptop.do("a wrong password",
		chromedp.WaitVisible(chromedp.CSS(`#delete-password`)),
		chromedp.SendKeys(chromedp.CSS(`#delete-password`), "not it"),
		chromedp.Click(chromedp.CSS(`#delete-account button[type=submit]`)),
	)
	laptop.waitJS("the wrong password refused", `!document.getElementById('delete-account-error').hidden && document.getElementById('delete-account-error').textContent.includes('not right')`)
	laptop.do("the right password, erasing too",
		evalVoid(`document.getElementById('delete-password').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#delete-password`), "alice's password"),
		chromedp.Click(chromedp.CSS(`#delete-erase`)),
	)
	laptop.screenshot("account-delete")
	laptop.do("delete", chromedp.Click(chromedp.CSS(`#delete-account button[type=submit]`)))
	laptop.waitJS("the laptop signed out", `location.pathname === '/signin'`)
	phone.waitJS("the phone signed out", `location.pathname === '/signin'`)

	other.navigate(srv.url + "/rooms/lobby")
	other.waitLive("ws")
	other.waitJS("alice's message erased", `!!document.querySelector('#m1') && !document.querySelector('#m1').textContent.includes('555-0100')`)

	phone.do("sign in as alice again",
		chromedp.WaitVisible(chromedp.CSS(`#signin input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=name]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=password]`), "alice's password"),
		chromedp.Click(chromedp.CSS(`#signin button[value=signin]`)),
	)
	phone.waitJS("the name refused", `!document.getElementById('signin-error').hidden && document.getElementById('signin-error').textContent.includes('was deleted')`)
}
