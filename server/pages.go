package server

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"natter"
	"natter/web"
)

// pageSecurityPolicy is sent with every page and static file. It forbids inline script and
// style, so text that slips past escaping still cannot run; 'self' covers the same-origin
// WebSocket too.
const pageSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Page templates: layoutTemplate wraps every page, and each page file defines its blocks
// ("title", "content"). Any other *.html file is a partial that every page can call.
const layoutTemplate = "layout.html"

var pageTemplates = []string{"signin.html", "rooms.html", "room.html", "account.html", "join.html", "error.html"}

// transports are the values of ?transport= that force one real-time transport on a room page.
var transports = []string{"ws", "sse", "poll"}

// layer is one place that pages and static files are looked up: an operator's directory or the
// embedded defaults.
type layer struct {
	name string // for error messages: the directory, or "embedded"
	fsys fs.FS
}

// pages serves the web UI: HTML pages rendered from templates, and static files. Both are looked
// up in the operator's directories, in order, before the embedded defaults; the first match wins.
type pages struct {
	s      *Server
	static []layer
	tmpl   map[string]*template.Template // page file name -> layout plus that page
}

// newPages parses every template at startup, so a broken template in an operator's directory
// stops natter with a message that names the file, instead of failing on some later request.
func newPages(s *Server) (*pages, error) {
	p := &pages{s: s}
	var err error
	if p.static, err = layers(s.cfg.StaticDirs, web.Static, "--static-dir"); err != nil {
		return nil, err
	}
	tmplLayers, err := layers(s.cfg.TemplateDirs, web.Templates, "--template-dir")
	if err != nil {
		return nil, err
	}
	if p.tmpl, err = p.parseTemplates(tmplLayers); err != nil {
		return nil, err
	}
	return p, nil
}

func layers(dirs []string, embedded fs.FS, flag string) ([]layer, error) {
	var ls []layer
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s %s: not a directory", flag, dir)
		}
		ls = append(ls, layer{name: dir, fsys: rootedDir(dir)})
	}
	return append(ls, layer{name: "embedded", fsys: embedded}), nil
}

// rootedDir is an operator's directory as an fs.FS that cannot reach outside it: not with "..",
// and not through a symlink (os.OpenInRoot refuses both). Dot files are invisible, so a
// directory that holds, say, .git or .env does not publish it.
type rootedDir string

func (d rootedDir) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) || strings.Contains(name, `\`) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name != "." {
		for elem := range strings.SplitSeq(name, "/") {
			if strings.HasPrefix(elem, ".") {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
		}
	}
	f, err := os.OpenInRoot(string(d), name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// lookup returns the contents of name from the first layer that has it as a regular file.
func lookup(ls []layer, name string) (data []byte, from string, modTime time.Time, err error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, "", time.Time{}, fs.ErrNotExist
	}
	for _, l := range ls {
		f, err := l.fsys.Open(name)
		if err != nil {
			// Absent here, or a name that escapes the directory (which rootedDir refuses):
			// either way look further, so nothing outside the layers is ever served.
			continue
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			continue
		}
		data, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, "", time.Time{}, fmt.Errorf("read %s from %s: %w", name, l.name, err)
		}
		return data, l.name, fi.ModTime(), nil
	}
	return nil, "", time.Time{}, fs.ErrNotExist
}

// contentHash names a version of a static file in its URL and ETag.
func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// assetURL returns the URL of a static file with its content hash, which the static handler
// lets browsers cache for good: a new version has a new URL.
func (p *pages) assetURL(name string) (string, error) {
	data, _, _, err := lookup(p.static, name)
	if err != nil {
		return "", fmt.Errorf("static file %q: %w", name, err)
	}
	return "/static/" + (&url.URL{Path: name}).EscapedPath() + "?v=" + contentHash(data), nil
}

func (p *pages) parseTemplates(ls []layer) (map[string]*template.Template, error) {
	// Every *.html name in any layer, each taken from the first layer that has it.
	names := map[string]bool{layoutTemplate: true}
	for _, n := range pageTemplates {
		names[n] = true
	}
	for _, l := range ls {
		found, err := fs.Glob(l.fsys, "*.html")
		if err != nil {
			return nil, fmt.Errorf("templates in %s: %w", l.name, err)
		}
		for _, n := range found {
			names[n] = true
		}
	}
	funcs := template.FuncMap{"asset": p.assetURL}
	base := template.New("natter").Funcs(funcs)
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, name := range sorted {
		if slices.Contains(pageTemplates, name) {
			continue
		}
		if err := parseInto(base, ls, name); err != nil {
			return nil, err
		}
	}
	out := make(map[string]*template.Template, len(pageTemplates))
	for _, name := range pageTemplates {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if err := parseInto(t, ls, name); err != nil {
			return nil, err
		}
		// A dry run with sample data finds what parsing can't: an unknown field, a missing
		// static file, a context html/template can't escape.
		if err := t.ExecuteTemplate(io.Discard, layoutTemplate, samplePageData(name)); err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func parseInto(t *template.Template, ls []layer, name string) error {
	src, from, _, err := lookup(ls, name)
	if err != nil {
		return fmt.Errorf("template %s: %w", name, err)
	}
	if _, err := t.New(name).Parse(string(src)); err != nil {
		return fmt.Errorf("template %s from %s: %w", name, from, err)
	}
	return nil
}

// PageData is what every page template gets. Operators' templates rely on these field names.
type PageData struct {
	Title     string       // the page's title, without the site name
	User      *natter.User // the signed-in user; nil on the sign-in page when signed out
	Guests    bool         // whether guests may sign in without a password
	Next      string       // sign-in page: the local path to go to afterwards
	MinPass   int          // sign-in page: the shortest password registration accepts
	Rooms     []RoomView   // room list, with each room's unread count for accounts (RoomView.Unread)
	Room      RoomView     // room page
	Transport string       // room page: "ws", "sse" or "poll" when ?transport= forces one
	MaxBody   int          // room page: the most characters a message may have
	Moderator bool         // room page: User moderates the room (Room.Moderator)
	Status    int          // error page: the HTTP status
	Message   string       // error page: what went wrong
	Invite    *InvitePage  // join page: the room and the invite's code
}

func samplePageData(page string) PageData {
	read, unread := int64(1), int64(1)
	room := RoomView{Room: natter.Room{Name: "lobby", Title: "Lobby", LastSeq: 2, Epoch: "e"}, ReadSeq: &read, NewMessages: &unread}
	direct := RoomView{Room: natter.Room{Name: natter.DirectRoomName("other", "sample"), Title: "other, sample", Private: true, Direct: []string{"other", "sample"}}, With: "other"}
	return PageData{
		Title: "Sample", User: &natter.User{Name: "sample"}, Guests: true, Next: "/", MinPass: 6,
		Rooms: []RoomView{room, direct}, Room: room, Transport: "ws", MaxBody: 4096,
		Status: http.StatusNotFound, Message: "sample", Invite: &InvitePage{Room: "club", Code: "sample-code", Works: true},
	}
}

func (p *pages) register(mux *http.ServeMux) {
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, withSecurityHeaders(h)) }
	handle("GET /{$}", p.handleRooms)
	handle("GET /signin", p.handleSignIn)
	handle("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		// The form posts here only when its script did not run. It posts, rather than gets, so
		// that a password never lands in a URL.
		p.renderError(w, r, http.StatusBadRequest, "Signing in needs JavaScript, and so does chatting: turn it on for this site and try again.")
	})
	handle("POST /signout", p.handleSignOut)
	handle("GET /account", p.handleAccount)
	handle("POST /account", func(w http.ResponseWriter, r *http.Request) {
		// The forms post here only when their script did not run.
		p.renderError(w, r, http.StatusBadRequest, "Changing your password or signing out everywhere needs JavaScript: turn it on for this site and try again.")
	})
	handle("GET /rooms/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	handle("GET /rooms/{room}", p.handleRoom)
	handle("GET /join/{room}/{code}", p.handleJoinPage)
	handle("POST /join/{room}/{code}", func(w http.ResponseWriter, r *http.Request) {
		// The form posts here only when its script did not run.
		p.renderError(w, r, http.StatusBadRequest, "Joining a room needs JavaScript, and so does chatting: turn it on for this site and try again.")
	})
	handle("GET /static/{path...}", p.handleStatic)
	handle("/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
}

// withSecurityHeaders puts the page policy on every response of the web UI, redirects and 404s
// included.
func withSecurityHeaders(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pageSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		h(w, r)
	})
}

// render executes a page into a buffer first, so a failure gives a clean 500, not half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, page string, data PageData) {
	var buf bytes.Buffer
	if err := p.tmpl[page].ExecuteTemplate(&buf, layoutTemplate, data); err != nil {
		p.s.logger.Error("page failed", "page", page, "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>natter: error</title><p>Something went wrong on the server.</p>\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // pages show who is signed in
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (p *pages) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	data := PageData{Title: http.StatusText(status), Status: status, Message: msg}
	if a, err := p.s.authenticate(r, false); err == nil {
		data.User = &a.user
	}
	p.render(w, r, status, "error.html", data)
}

// signedIn returns the user of a page request, or sends the browser to the sign-in page (which
// comes back here afterwards) and returns nil.
func (p *pages) signedIn(w http.ResponseWriter, r *http.Request) *natter.User {
	a, err := p.s.authenticate(r, false)
	if err == nil {
		return &a.user
	}
	if natter.ErrorCode(err) != natter.EUNAUTHORIZED {
		p.s.logger.Error("page auth failed", "path", r.URL.Path, "err", err)
		p.renderError(w, r, http.StatusServiceUnavailable, "natter can't check who you are right now. Try again in a moment.")
		return nil
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return nil
}

// localPath returns next if it is a path on this site, else "/": the sign-in page must not
// become an open redirect.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func (p *pages) handleSignIn(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if _, err := p.s.authenticate(r, false); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "signin.html", PageData{
		Title: "Sign in", Guests: p.s.cfg.Guests, Next: next, MinPass: p.s.cfg.MinPasswordChars,
	})
}

// handleSignOut is the sign-out form's target when JavaScript is off; the page's script calls
// DELETE /api/session instead. It needs the same cross-origin check as the API.
func (p *pages) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if err := p.s.csrf.Check(r); err != nil {
		p.renderError(w, r, http.StatusForbidden, "Sign-out refused: the request came from another site.")
		return
	}
	if a, err := p.s.authenticate(r, false); err == nil {
		if err := p.s.revokeSession(r.Context(), a.tokenHash); err != nil {
			p.s.logger.Error("sign out failed", "err", err)
			p.renderError(w, r, http.StatusServiceUnavailable, "Signing out failed. Try again in a moment.")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (p *pages) handleRooms(w http.ResponseWriter, r *http.Request) {
	user := p.signedIn(w, r)
	if user == nil {
		return
	}
	rooms, err := p.s.store.Rooms(r.Context())
	if err != nil {
		p.s.logger.Error("list rooms failed", "err", err)
		p.renderError(w, r, http.StatusServiceUnavailable, "The room list can't be read right now. Try again in a moment.")
		return
	}
	rooms = p.s.listedRooms(r.Context(), *user, rooms)
	p.render(w, r, http.StatusOK, "rooms.html", PageData{Title: "Rooms", User: user, Rooms: listOrder(p.s.roomViews(r.Context(), *user, rooms...))})
}

// listOrder orders rooms as pages list them: rooms by name, then direct conversations by the
// other account's name (the page's script keeps the same order as it adds rooms).
func listOrder(views []RoomView) []RoomView {
	slices.SortStableFunc(views, func(a, b RoomView) int {
		if (a.With == "") != (b.With == "") {
			if a.With == "" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.With+"\x00"+a.Name, b.With+"\x00"+b.Name)
	})
	return views
}

func (p *pages) handleAccount(w http.ResponseWriter, r *http.Request) {
	user := p.signedIn(w, r)
	if user == nil {
		return
	}
	p.render(w, r, http.StatusOK, "account.html", PageData{Title: "Your account", User: user, MinPass: p.s.cfg.MinPasswordChars})
}

func (p *pages) handleRoom(w http.ResponseWriter, r *http.Request) {
	user := p.signedIn(w, r)
	if user == nil {
		return
	}
	room, err := p.s.roomFor(r.Context(), r.PathValue("room"), *user)
	if err != nil {
		if natter.ErrorCode(err) == natter.ENOTFOUND {
			p.renderError(w, r, http.StatusNotFound, natter.ErrorMessage(err)+".")
			return
		}
		p.s.logger.Error("read room failed", "err", err)
		p.renderError(w, r, http.StatusServiceUnavailable, "The room can't be read right now. Try again in a moment.")
		return
	}
	// The other rooms, for the list beside this one; without them the room still opens.
	rooms, err := p.s.store.Rooms(r.Context())
	if err != nil {
		p.s.logger.Warn("list rooms for a room page", "err", err)
	}
	rooms = p.s.listedRooms(r.Context(), *user, rooms)
	if i := slices.IndexFunc(rooms, func(o natter.Room) bool { return o.Name == room.Name }); i >= 0 {
		rooms[i] = room
	} else {
		rooms = append(rooms, room)
	}
	views := listOrder(p.s.roomViews(r.Context(), *user, rooms...))
	data := PageData{Title: room.Title, User: user, Rooms: views, MaxBody: p.s.limits.MaxBodyChars}
	data.Room = views[slices.IndexFunc(views, func(v RoomView) bool { return v.Name == room.Name })]
	if data.Room.With != "" {
		data.Title = "@" + data.Room.With
	}
	if err := p.s.withRoles(r.Context(), *user, &data.Room); err != nil {
		p.s.logger.Warn("room page: who moderates, who is banned", "room", room.Name, "err", err)
	}
	data.Moderator = data.Room.Moderator
	if data.Title == "" {
		data.Title = room.Name
	}
	if t := r.URL.Query().Get("transport"); slices.Contains(transports, t) {
		data.Transport = t
	}
	p.render(w, r, http.StatusOK, "room.html", data)
}

// handleStatic serves a static file. A URL that carries the file's current content hash
// (?v=, as assetURL makes) may be cached for a year; any other URL is revalidated by ETag, so an
// operator's edited file shows up at once.
func (p *pages) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	if path.Clean("/"+name) != "/"+name {
		http.NotFound(w, r)
		return
	}
	data, _, modTime, err := lookup(p.static, name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.s.logger.Error("static file failed", "path", name, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	hash := contentHash(data)
	h := w.Header()
	h.Set("ETag", `"`+hash+`"`)
	if r.URL.Query().Get("v") == hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, modTime, bytes.NewReader(data))
}
