package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"natter/app"
	"natter/server"
)

// browserish is an HTTP client that keeps cookies and does not follow redirects, so tests see
// where a page sends the browser.
type browserish struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowserish(t *testing.T, base string) *browserish {
	jar, _ := cookiejar.New(nil)
	return &browserish{t: t, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get fetches path with optional header name/value pairs and returns the response and its body.
func (b *browserish) get(path string, hdr ...string) (*http.Response, string) {
	return b.send("GET", path, "", hdr...)
}

func (b *browserish) send(method, path, body string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res, string(data)
}

// signIn signs in as a guest through the API, which sets the session cookie.
func (b *browserish) signIn(name string) {
	b.t.Helper()
	res, body := b.send("POST", "/api/session", `{"name":"`+name+`"}`)
	if res.StatusCode != http.StatusOK {
		b.t.Fatalf("sign in: %s %s", res.Status, body)
	}
}

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestPagesRedirectToSignIn(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)
	for path, want := range map[string]string{
		"/":                          "/signin?next=%2F",
		"/rooms/lobby":               "/signin?next=%2Frooms%2Flobby",
		"/rooms/lobby?transport=sse": "/signin?next=%2Frooms%2Flobby%3Ftransport%3Dsse",
		"/account":                   "/signin?next=%2Faccount",
	} {
		res, _ := b.get(path)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("GET %s signed out: %s to %q, want 303 to %q", path, res.Status, res.Header.Get("Location"), want)
		}
	}
	// A session that has ended counts as signed out.
	b.signIn("ann")
	if res, _ := b.send("DELETE", "/api/session", "", "Sec-Fetch-Site", "same-origin"); res.StatusCode != http.StatusNoContent {
		t.Fatalf("sign out: %s", res.Status)
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after signing out: %s, want a redirect to sign in", res.Status)
	}
}

// TestAccountPageForms: an account's page has the password and sign-out-everywhere forms; a
// guest's says why it has neither.
func TestAccountPageForms(t *testing.T) {
	ts := startServer(t)
	if r := ts.register("alice", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	b := newBrowserish(t, ts.URL)
	if res, body := b.send("POST", "/api/session", `{"name":"alice","password":"password"}`); res.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s %s", res.Status, body)
	}
	res, body := b.get("/account")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="change-password"`) || !strings.Contains(body, `id="signout-everywhere"`) || res.Header.Get("Content-Security-Policy") != wantCSP {
		t.Fatalf("alice's account page: %s, CSP %q\n%s", res.Status, res.Header.Get("Content-Security-Policy"), body)
	}
	g := newBrowserish(t, ts.URL)
	g.signIn("gus")
	res, body = g.get("/account")
	if res.StatusCode != http.StatusOK || strings.Contains(body, `id="change-password"`) || strings.Contains(body, `id="signout-everywhere"`) || !strings.Contains(body, "a guest") {
		t.Fatalf("a guest's account page: %s\n%s", res.Status, body)
	}
}

func TestPagesRender(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)

	res, body := b.get("/signin?next=/rooms/lobby")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /signin: %s", res.Status)
	}
	for _, want := range []string{`name="name"`, `name="password"`, `value="guest"`, `data-next="/rooms/lobby"`} {
		if !strings.Contains(body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}

	// Without script the form posts (so no password lands in a URL) and is told why it failed.
	if res, body := b.send("POST", "/signin", ""); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "JavaScript") {
		t.Errorf("POST /signin: %s", res.Status)
	}

	b.signIn("ann")
	// Signed in, the sign-in page moves on.
	if res, _ := b.get("/signin?next=/rooms/lobby"); res.Header.Get("Location") != "/rooms/lobby" {
		t.Errorf("signed-in GET /signin went to %q, want /rooms/lobby", res.Header.Get("Location"))
	}

	res, body = b.get("/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/rooms/lobby"`) || !strings.Contains(body, `id="create-room"`) {
		t.Errorf("room list: %s, lists lobby and has the create form: %v", res.Status, strings.Contains(body, `/rooms/lobby`))
	}

	// A title is text: the page escapes it.
	ts.do("POST", "/api/rooms", ts.signIn("carl"), map[string]string{"name": "xss", "title": `<script>alert(1)</script>`})
	res, body = b.get("/rooms/xss?transport=poll")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("room page: %s", res.Status)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("room title not escaped:\n%s", body)
	}
	for _, want := range []string{`data-room="xss"`, `data-user="ann"`, `data-transport="poll"`, `name="body"`, `id="online"`, `id="conn"`} {
		if !strings.Contains(body, want) {
			t.Errorf("room page lacks %s", want)
		}
	}
	// Only the three transports can be forced.
	if _, body = b.get("/rooms/xss?transport=%22%3E"); !strings.Contains(body, `data-transport=""`) {
		t.Errorf("an unknown ?transport= reached the page")
	}

	if res, body = b.get("/rooms/nope"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "no room named") {
		t.Errorf("unknown room: %s", res.Status)
	}
	if res, _ = b.get("/no/such/page"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %s, want 404", res.Status)
	}
	// The API keeps its JSON 404s.
	if res, body = b.get("/api/nope"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("unknown API path: %s %s", res.Status, body)
	}
}

func TestPagesSecurityHeaders(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)
	_, page := b.get("/signin")
	css := regexp.MustCompile(`/static/app\.css\?v=[0-9a-f]+`).FindString(page)
	for _, path := range []string{"/signin", "/", "/nope", css, "/static/app.js"} {
		res, _ := b.get(path)
		h := res.Header
		if h.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("GET %s: Content-Security-Policy = %q", path, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: nosniff %q, Referrer-Policy %q", path, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
	// No inline script or handler anywhere in the pages: the policy would block it anyway.
	b.signIn("ann")
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]|\son[a-z]+=|style=`)
	for _, path := range []string{"/signin?x", "/", "/rooms/lobby", "/nope"} {
		_, body := b.get(path)
		if m := inline.FindString(body); m != "" {
			t.Errorf("GET %s has inline script or style: %q", path, m)
		}
	}
}

func TestSignInNextStaysOnSite(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)
	for next, want := range map[string]string{
		"/rooms/ops?transport=ws": "/rooms/ops?transport=ws",
		"//evil.example/":         "/",
		"/\\evil.example":         "/",
		"https://evil.example/":   "/",
		"javascript:alert(1)":     "/",
		"rooms/ops":               "/",
	} {
		_, body := b.get("/signin?next=" + urlQueryEscape(next))
		if !strings.Contains(body, `data-next="`+want+`"`) {
			t.Errorf("next=%q: the page would go to %q", next, regexp.MustCompile(`data-next="[^"]*"`).FindString(body))
		}
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23", "?", "%3F", "=", "%3D", "\\", "%5C")
	return r.Replace(s)
}

func TestStaticCaching(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)
	_, page := b.get("/signin")
	m := regexp.MustCompile(`/static/app\.css\?v=([0-9a-f]+)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page does not link app.css with a content hash:\n%s", page)
	}
	hashed, hash := m[0], m[1]

	res, css := b.get(hashed)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET %s: %s %s", hashed, res.Status, res.Header.Get("Content-Type"))
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("hashed URL: Cache-Control %q, want a year, immutable", cc)
	}
	if res.Header.Get("ETag") != `"`+hash+`"` {
		t.Errorf("ETag %q, want %q", res.Header.Get("ETag"), `"`+hash+`"`)
	}

	res, plain := b.get("/static/app.css")
	if plain != css || res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") != `"`+hash+`"` {
		t.Errorf("plain URL: Cache-Control %q ETag %q, want no-cache with the same ETag", res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
	}
	if res, body := b.get("/static/app.css", "If-None-Match", `"`+hash+`"`); res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match with the current ETag: %s, want 304", res.Status)
	}
	if res, _ := b.get("/static/app.css", "If-None-Match", `"stale"`); res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with an old ETag: %s, want 200", res.Status)
	}
	// A URL naming another version must not be cached for good: it would pin the wrong file.
	if res, _ := b.get("/static/app.css?v=0000"); res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("stale ?v=: Cache-Control %q, want no-cache", res.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/static/", "/static/nope.css", "/static/../go.mod", "/static/%2e%2e/web.go"} {
		if res, _ := b.get(path); res.StatusCode != http.StatusNotFound && res.StatusCode/100 != 3 {
			t.Errorf("GET %s: %s, want 404", path, res.Status)
		}
	}
}

// writeFiles creates files (name -> contents) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStaticOverlay(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.txt": "outside the overlay"})
	first, second := t.TempDir(), t.TempDir()
	writeFiles(t, first, map[string]string{"app.css": "body{color:red}", ".env": "SECRET=1"})
	writeFiles(t, second, map[string]string{"app.css": "body{color:blue}", "brand/logo.txt": "logo"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(first, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(first, "out")); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *app.Config) { c.Server.StaticDirs = []string{first, second} })
	b := newBrowserish(t, ts.URL)

	for path, want := range map[string]string{
		"/static/app.css":        "body{color:red}", // the first directory wins
		"/static/brand/logo.txt": "logo",            // then the next
	} {
		if res, body := b.get(path); res.StatusCode != http.StatusOK || body != want {
			t.Errorf("GET %s: %s %q, want %q", path, res.Status, body, want)
		}
	}
	if res, body := b.get("/static/app.js"); res.StatusCode != http.StatusOK || !strings.Contains(body, "natter") {
		t.Errorf("GET /static/app.js (embedded): %s", res.Status)
	}
	// The page links the overlay's file by its own hash.
	_, page := b.get("/signin")
	res, body := b.get(regexp.MustCompile(`/static/app\.css\?v=[0-9a-f]+`).FindString(page))
	if body != "body{color:red}" || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("hashed overlay CSS: %q %q", body, res.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/static/link.txt", "/static/out/secret.txt", "/static/.env", "/static/..%2fsecret.txt"} {
		if res, body := b.get(path); res.StatusCode == http.StatusOK {
			t.Errorf("GET %s escaped the overlay: %q", path, body)
		}
	}
}

func TestTemplateOverlay(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"error.html":  `{{define "content"}}<main id="main"><h1>Custom: {{.Title}}</h1>{{template "footer.html" .}}</main>{{end}}`,
		"footer.html": `<footer>operator footer</footer>`,
	})
	ts := startServer(t, func(c *app.Config) { c.Server.TemplateDirs = []string{dir} })
	b := newBrowserish(t, ts.URL)
	res, body := b.get("/nope")
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "Custom: Not Found") || !strings.Contains(body, "operator footer") {
		t.Errorf("overlaid error page: %s\n%s", res.Status, body)
	}
	if _, body := b.get("/signin"); !strings.Contains(body, `name="password"`) {
		t.Errorf("the sign-in page should still come from the embedded templates")
	}
}

func TestBrokenOverlayStopsStartup(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"parse error":       {map[string]string{"room.html": `{{define "content"}}{{if}}{{end}}`}, "room.html"},
		"unknown field":     {map[string]string{"rooms.html": `{{define "content"}}{{.Nope}}{{end}}`}, "rooms.html"},
		"missing asset":     {map[string]string{"layout.html": `<link href="{{asset "nope.css"}}">`}, "nope.css"},
		"unclosed in style": {map[string]string{"error.html": `{{define "content"}}<a href="{{.Title}}{{end}}`}, "error.html"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			m, err := app.Open(context.Background(), app.Config{
				Addr: "127.0.0.1:0", DataDir: t.TempDir(),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Server: server.Config{TemplateDirs: []string{dir}},
			})
			if err == nil {
				m.Close(context.Background())
				t.Fatalf("natter started with a broken template")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
	_, err := app.Open(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Server: server.Config{StaticDirs: []string{filepath.Join(t.TempDir(), "missing")}},
	})
	if err == nil || !strings.Contains(err.Error(), "--static-dir") {
		t.Errorf("a missing --static-dir: %v", err)
	}
}

func TestSignOutForm(t *testing.T) {
	ts := startServer(t)
	b := newBrowserish(t, ts.URL)
	b.signIn("ann")
	// Another site's form can't sign people out.
	if res, _ := b.send("POST", "/signout", "", "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-out: %s, want 403", res.Status)
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusOK {
		t.Fatalf("still signed in after a refused sign-out: %s", res.Status)
	}
	res, _ := b.send("POST", "/signout", "", "Sec-Fetch-Site", "same-origin")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
		t.Fatalf("sign-out: %s to %q", res.Status, res.Header.Get("Location"))
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after sign-out: %s, want a redirect to sign in", res.Status)
	}
}
