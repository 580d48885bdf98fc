package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"natter/app"
	"natter/client"
	"natter/server"
)

// chromiumPath is Debian's Chromium. Tests skip without it, except under CI=true, where a missing
// browser is a broken test machine and fails.
const chromiumPath = "/usr/bin/chromium"

// Timeouts. They are generous on purpose: they only bound a test that is already failing, and no
// test asserts how fast anything happens.
const (
	actionTimeout = 45 * time.Second
)

// screenshotDir holds failure screenshots and the desktop and phone views a passing run saves.
const screenshotDir = "screenshots"

// natter is a real server started in-process on 127.0.0.1 with a temp data dir, which it keeps
// across restart so that the same log comes back.
type natter struct {
	t    testing.TB
	cfg  app.Config
	main *app.Main
	url  string
}

func startNatter(t testing.TB, configure func(*app.Config)) *natter {
	t.Helper()
	cfg := app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Sync:    "NORMAL",
		Server:  server.Config{Guests: true},
	}
	if configure != nil {
		configure(&cfg)
	}
	n := &natter{t: t, cfg: cfg}
	n.open()
	n.cfg.Addr = n.main.Addr().String() // a restart comes back on the same port
	n.url = n.main.URL()
	t.Cleanup(func() {
		if n.main != nil {
			n.close()
		}
	})
	return n
}

func (n *natter) open() {
	n.t.Helper()
	m, err := app.Open(context.Background(), n.cfg)
	if err != nil {
		n.t.Fatalf("start natter: %v", err)
	}
	n.main = m
}

func (n *natter) close() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.main.Close(ctx); err != nil {
		n.t.Errorf("stop natter: %v", err)
	}
	n.main = nil
}

// apiUser calls the JSON API with a bearer token, to set up and check state beside the browser.
type apiUser struct {
	t     testing.TB
	base  string
	name  string
	token string
}

// guest signs name in as a guest over the API.
func (n *natter) guest(name string) *apiUser {
	n.t.Helper()
	u := &apiUser{t: n.t, base: n.url, name: name}
	var out struct {
		Token string `json:"token"`
	}
	u.call("POST", "/api/session", map[string]string{"name": name}, &out)
	u.token = out.Token
	return u
}

func (u *apiUser) call(method, path string, body, out any) int {
	u.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		u.t.Fatalf("%s %s: %s: %s", method, path, res.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			u.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

func (u *apiUser) createRoom(name, title string) {
	u.t.Helper()
	u.call("POST", "/api/rooms", map[string]string{"name": name, "title": title}, nil)
}

func (u *apiUser) send(room, body string) int64 {
	u.t.Helper()
	var out struct {
		Message struct {
			Seq int64 `json:"seq"`
		} `json:"message"`
	}
	u.call("POST", "/api/rooms/"+room+"/messages", map[string]string{"body": body}, &out)
	return out.Message.Seq
}

// join keeps a WebSocket subscribed to room as u until the test ends, so that the room lists u
// as online.
func (u *apiUser) join(room string) {
	u.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := client.New(u.base, client.WithToken(u.token)).DialWS(ctx)
	if err != nil {
		cancel()
		u.t.Fatalf("%s joins %s: %v", u.name, room, err)
	}
	if err := conn.Subscribe(ctx, room, -1); err != nil {
		cancel()
		u.t.Fatalf("%s joins %s: %v", u.name, room, err)
	}
	done := make(chan struct{})
	go func() { // read, so that pings are answered and nothing piles up
		defer close(done)
		for {
			if _, err := conn.ReadFrame(ctx); err != nil {
				return
			}
		}
	}()
	u.t.Cleanup(func() {
		cancel()
		conn.Close()
		<-done
	})
}

// newBrowser starts a headless Chromium for one test, with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and there is no Chromium at %s: %v", chromiumPath, err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium); skipping browser test", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// page is one tab in its own browser context: its own cookies, so two pages are two people.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func newPage(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx}
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open a tab for %s: %v", name, err)
	}
	// An uncaught exception or unhandled rejection in the page's scripts fails the test, even
	// when the page happened to recover.
	var mu sync.Mutex
	var exceptions []string
	messages := chromedp.Console(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-watching
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("%s: uncaught exception in the page: %s", name, e)
		}
	})
	// Registered after cancel, so it runs before it: the tab is still there to photograph.
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot("FAIL-" + t.Name() + "-" + name)
		}
	})
	return p
}

// do runs actions, failing the test with what was being done.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func evalJS[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page. On timeout it fails with what was awaited and
// what the page showed.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(actionTimeout)
	for {
		ctx, cancel := context.WithDeadline(p.ctx, deadline.Add(5*time.Second))
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		// A poll runs in the page and ends when the page navigates; that is no answer yet.
		if navigated(err) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		p.t.Fatalf("%s: waiting for %s: %v\n%s", p.name, what, err, p.describe())
	}
}

func navigated(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "navigated or closed") || strings.Contains(msg, "context was destroyed") ||
		strings.Contains(msg, "Cannot find context")
}

// describe summarises the page for failure messages.
func (p *page) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const c = document.getElementById('conn');
		const seqs = [...document.querySelectorAll('#messages [data-seq]')].map(e => e.dataset.seq);
		return 'url=' + location.href +
			(c ? ' conn=' + c.dataset.transport + '/' + c.dataset.state : '') +
			' seqs=[' + seqs.join(',') + ']' +
			' pending=' + document.querySelectorAll('#pending li').length +
			' online=[' + [...document.querySelectorAll('#online li')].map(e => e.textContent).join(',') + ']';
	})()`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return s
}

// createRoom makes a room with the room list's form (private: with its Private box ticked) and
// waits for the new room's page.
func (p *page) createRoom(name string, private bool) {
	p.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(chromedp.CSS(`#create-room input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`#create-room input[name=name]`), name),
	}
	if private {
		actions = append(actions, chromedp.Click(chromedp.CSS(`#create-room input[name=private]`)))
	}
	p.do("create room "+name, append(actions, chromedp.Click(chromedp.CSS(`#create-room button[type=submit]`)))...)
	p.waitJS("the new room's page", `location.pathname === '/rooms/`+name+`'`)
}

func (p *page) navigate(url string) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url))
}

func (p *page) path() string {
	return evalJS[string](p, `location.pathname + location.search`)
}

// signIn uses the sign-in form. button is "signin", "register" or "guest".
func (p *page) signIn(base, name, password, button string) {
	p.t.Helper()
	if !strings.HasPrefix(p.path(), "/signin") {
		p.navigate(base + "/signin")
	}
	p.do("fill in the sign-in form",
		chromedp.WaitVisible(chromedp.CSS(`#signin input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=name]`), name),
	)
	if password != "" {
		p.do("type a password", chromedp.SendKeys(chromedp.CSS(`#signin input[name=password]`), password))
	}
	p.do("press "+button, chromedp.Click(chromedp.CSS(`#signin button[value=`+button+`]`)))
	p.waitJS("to leave the sign-in page", `!location.pathname.startsWith('/signin')`)
}

// waitLive waits until the room page is live over transport.
func (p *page) waitLive(transport string) {
	p.t.Helper()
	p.waitJS("a live "+transport+" connection",
		fmt.Sprintf(`(c => c && c.dataset.state === 'live' && c.dataset.transport === %q)(document.getElementById('conn'))`, transport))
}

// say types a message into the box and presses Enter.
func (p *page) say(text string) {
	p.t.Helper()
	p.do("type "+text, chromedp.SendKeys(chromedp.CSS(`textarea[name=body]`), text), pressEnter)
}

// pressEnter is the Enter key as a person presses it. SendKeys("\n") also sends a separate char
// event, which the browser would have dropped after the page cancelled the keydown, and which
// CDP delivers anyway as a stray new line.
var pressEnter = pressKey("Enter", 13)

// pressKey is a key as a person presses it: down, then up, with no char event.
func pressKey(key string, code int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: key, WindowsVirtualKeyCode: code, NativeVirtualKeyCode: code,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// tapMessage taps message seq's text where the screen has no hover (a touch screen: headless
// Chromium says so), as a person does to bring up the message's tools.
func (p *page) tapMessage(seq int64) {
	p.t.Helper()
	if evalJS[bool](p, `matchMedia('(hover: none)').matches`) {
		p.do("tap the message", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#m%d .body`, seq))))
		p.waitJS("the tapped message's tools", fmt.Sprintf(`document.getElementById('m%d').classList.contains('tapped')`, seq))
	}
}

// seqs returns the data-seq of every message shown, in page order.
func (p *page) seqs() []int64 {
	return evalJS[[]int64](p, `[...document.querySelectorAll('#messages [data-seq]')].map(e => Number(e.dataset.seq))`)
}

// waitMessage waits for a message by author whose text is body.
func (p *page) waitMessage(author, body string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%s's message %q", author, body), fmt.Sprintf(
		`[...document.querySelectorAll('#messages [data-seq][data-author=%q] .body')].some(e => e.textContent === %q)`, author, body))
}

// waitSeqs waits until the page shows exactly the messages first..last, then checks they are
// in order with no gap and no duplicate.
func (p *page) waitSeqs(first, last int64) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("messages %d..%d", first, last), fmt.Sprintf(`(() => {
		const s = [...document.querySelectorAll('#messages [data-seq]')].map(e => Number(e.dataset.seq));
		return s.length === %d && s[0] === %d && s[s.length - 1] === %d;
	})()`, last-first+1, first, last))
	assertSeqs(p.t, p.seqs(), first, last)
}

func assertSeqs(t *testing.T, got []int64, first, last int64) {
	t.Helper()
	var want []int64
	for s := first; s <= last; s++ {
		want = append(want, s)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("data-seq values = %v, want exactly %d..%d", got, first, last)
	}
}

// screenshot saves the viewport as screenshots/<name>.png.
func (p *page) screenshot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	safe := strings.NewReplacer("/", "_", " ", "_").Replace(name)
	file := filepath.Join(screenshotDir, safe+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.t.Logf("saved %s", file)
}

// viewport resizes the page, as a desktop window or a phone.
func (p *page) viewport(width, height int64, mobile bool) {
	p.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	p.do(fmt.Sprintf("resize to %dx%d", width, height), chromedp.EmulateViewport(width, height, opts...))
}

// colorScheme makes the page see prefers-color-scheme: scheme ("light" or "dark").
func (p *page) colorScheme(scheme string) {
	p.t.Helper()
	p.do("prefer a "+scheme+" color scheme", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// evalVoid runs JavaScript for its effect.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}
