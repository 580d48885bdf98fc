package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Light formatting in message bodies, done in the browser: ``` code blocks, `code`, **bold**,
// *italic* and _italic_, links outside code. Markers count only where they hug text, nothing is
// formatted or linked inside code, whatever does not pair up stays literal, and text stays text.
// Mentions and editing use the body as typed.
func TestFormatting(t *testing.T) {
	srv := startNatter(t, nil)
	ann := srv.guest("ann")
	code := "if a < b && s == \"<b>\" {\n\treturn \"**not bold**\", _x_ // https://example.com/in-block\n}"
	bodies := []string{
		"Here is the fix:\n```go\n" + code + "\n```\nThat *should* do it.",
		"Run `go test <pkg> **x** https://example.com/in-code` then **ship it**, *carefully* and _quickly_ (see https://example.com/docs_v2).",
		"2 * 3 * 4 = 24, snake_case_name and __init__ stay as typed, as do *unclosed, ** spaced ** and `unclosed",
		"**see https://example.org/a_b_c** and `` a `tick` inside ``",
		"<script>window.__pwned = 1</script> `<img src=x onerror=\"window.__pwned='code'\">` and *<img src=x onerror=\"window.__pwned='em'\">*",
		"**@reader** could you look at this?",
		"```\n" + strings.Repeat("a_very_long_line_of_code(", 12) + strings.Repeat(")", 12) + "\n```",
	}
	for _, b := range bodies {
		ann.send("lobby", b)
	}

	browser := newBrowser(t)
	p := newPage(t, browser, "reader")
	p.navigate(srv.url + "/rooms/lobby")
	p.signIn(srv.url, "reader", "reader's password", "register")
	p.waitLive("ws")
	p.waitSeqs(1, int64(len(bodies)))
	// The page's code builds elements one by one; here innerHTML is only read, to compare the
	// structure it made in one string.
	inner := func(seq int) string {
		t.Helper()
		return evalJS[string](p, fmt.Sprintf(`document.querySelector('#m%d .body').innerHTML`, seq))
	}
	link := func(url string) string {
		return `<a href="` + url + `" rel="noopener noreferrer" target="_blank">` + url + `</a>`
	}

	// 1. A code block: its lines exactly as typed, nothing made inside, text around it formatted.
	type block struct {
		Pres, Elements     int
		Code, Before, Rest string
	}
	got := evalJS[block](p, `(() => {
		const b = document.querySelector('#m1 .body'), pre = b.querySelector('pre');
		return {
			pres: b.querySelectorAll('pre').length,
			elements: pre.querySelectorAll('*').length,
			code: pre.querySelector(':scope > code').textContent,
			before: b.firstChild.textContent,
			rest: [...b.childNodes].slice([...b.childNodes].indexOf(pre) + 1).map(n => n.nodeName === 'EM' ? '<em>' + n.textContent + '</em>' : n.textContent).join(''),
		};
	})()`)
	if want := (block{Pres: 1, Elements: 1, Code: code, Before: "Here is the fix:", Rest: "That <em>should</em> do it."}); got != want {
		t.Errorf("code block:\n got %+v\nwant %+v", got, want)
	}

	// 2. Inline code (nothing inside it formatted or linked), emphasis, and a link outside code.
	if got, want := inner(2), "Run <code>go test &lt;pkg&gt; **x** https://example.com/in-code</code> then <strong>ship it</strong>, "+
		"<em>carefully</em> and <em>quickly</em> (see "+link("https://example.com/docs_v2")+")."; got != want {
		t.Errorf("inline formatting:\n got %s\nwant %s", got, want)
	}

	// 3. Markers that do not hug text, or sit inside words, or do not pair, stay as typed.
	if got := evalJS[string](p, `(b => b.children.length + ':' + b.textContent)(document.querySelector('#m3 .body'))`); got != "0:"+bodies[2] {
		t.Errorf("message 3 shows %q, want the literal text %q with no elements", got, bodies[2])
	}

	// 4. A link inside bold (its underscores stay in it); a code span holding a backtick.
	if got, want := inner(4), "<strong>see "+link("https://example.org/a_b_c")+"</strong> and <code>a `tick` inside</code>"; got != want {
		t.Errorf("bold link and code span:\n got %s\nwant %s", got, want)
	}

	// 5. Markup stays text, in code and in emphasis too.
	if got, want := inner(5), "&lt;script&gt;window.__pwned = 1&lt;/script&gt; <code>&lt;img src=x onerror=\"window.__pwned='code'\"&gt;</code> and "+
		"<em>&lt;img src=x onerror=\"window.__pwned='em'\"&gt;</em>"; got != want {
		t.Errorf("markup in formatting:\n got %s\nwant %s", got, want)
	}
	if n := evalJS[int](p, `document.querySelectorAll('main img, main script, #messages b').length`); n != 0 {
		t.Errorf("%d elements were made from message markup", n)
	}
	if v := evalJS[string](p, `String(window.__pwned)`); v != "undefined" {
		t.Errorf("injected script ran: window.__pwned = %s", v)
	}
	// No link was made inside code (the times link to their messages: not in the text).
	if links := evalJS[[]string](p, `[...document.querySelectorAll('#messages .body a')].map(a => a.href)`); strings.Join(links, " ") != "https://example.com/docs_v2 https://example.org/a_b_c" {
		t.Errorf("links %q, want only the two outside code", links)
	}

	// 6. A mention is found in the body as typed, wherever the formatting puts the name.
	if !evalJS[bool](p, `(li => li.classList.contains('mention') && li.querySelector('.body strong').textContent === '@reader')(document.getElementById('m6'))`) {
		t.Errorf("**@reader** is not shown bold as a mention")
	}

	// 7. A long code block scrolls sideways inside its message; the page does not.
	wide := `(() => {
		const pre = document.querySelector('#m7 pre'), li = document.getElementById('m7'), s = document.getElementById('scroller');
		const r = pre.getBoundingClientRect(), l = li.getBoundingClientRect();
		return getComputedStyle(pre).overflowX === 'auto' && pre.scrollWidth > pre.clientWidth && r.right <= l.right + 0.5 &&
			s.scrollWidth <= s.clientWidth && document.documentElement.scrollWidth <= window.innerWidth;
	})()`
	if !evalJS[bool](p, wide) {
		t.Errorf("the long code block does not scroll inside its message at 1280 px")
	}

	// 8. Editing starts from the text as typed, markers and all, and the edit is formatted too.
	typed := "**mine**, with `code` and *stars*"
	p.say(typed)
	p.waitJS("reader's formatted message", `(b => b && b.querySelector('strong') && b.textContent === 'mine, with code and stars')(document.querySelector('#m8 .body'))`)
	p.do("press Up in the empty box", chromedp.Focus(chromedp.CSS(`textarea[name=body]`)), pressKey("ArrowUp", 38))
	p.waitJS("the message open to edit", `!!document.querySelector('#m8 .edit-box textarea')`)
	if got := evalJS[string](p, `document.querySelector('#m8 .edit-box textarea').value`); got != typed {
		t.Errorf("the edit box starts with %q, want the text as typed %q", got, typed)
	}
	p.do("edit it",
		evalVoid(`document.querySelector('#m8 .edit-box textarea').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#m8 .edit-box textarea`), "now _edited_, with `code`"),
		pressEnter,
	)
	p.waitJS("the edit, formatted", `(li => !!li.querySelector('.edited') && li.querySelector('.body').innerHTML === 'now <em>edited</em>, with <code>code</code>')(document.getElementById('m8'))`)

	p.do("scroll to the first message", evalVoid(`document.getElementById('m1').scrollIntoView({block: 'start'})`))
	p.screenshot("room-formatting")
	p.colorScheme("dark")
	p.screenshot("room-formatting-dark")
	p.viewport(390, 844, true)
	p.do("scroll to the long code block", evalVoid(`document.getElementById('m7').scrollIntoView({block: 'center'})`))
	if !evalJS[bool](p, wide) {
		t.Errorf("the long code block does not scroll inside its message on a phone")
	}
	p.screenshot("room-formatting-phone-dark")
	p.colorScheme("light")
}
