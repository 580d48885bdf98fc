package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"natter"
	"natter/client"
)

// CheckLoopback returns an error unless rawURL is an http(s) URL whose host is a loopback address
// (127.0.0.0/8, ::1) or localhost. A load generator aimed elsewhere by mistake is a denial of
// service, so other hosts need an explicit opt-in (Config.AllowRemote).
func CheckLoopback(rawURL string) error {
	u, err := parseBaseURL(rawURL)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %s is not a loopback address: natter bench only loads 127.0.0.1, ::1 or localhost unless --allow-remote is given", rawURL)
}

// parseBaseURL checks that rawURL is an absolute http or https URL with a host.
func parseBaseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %v", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q must start with http:// or https://", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--url %q has no host", rawURL)
	}
	return u, nil
}

// api makes the calls around the hot paths (sign-in, rooms) through the public client package,
// and holds the HTTP client that long-polls and HTTP sends share.
type api struct {
	base string // without trailing slash
	http *http.Client
}

func newAPI(base string, maxConns int) *api {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &api{base: strings.TrimRight(base, "/"), http: &http.Client{Transport: tr}}
}

func (a *api) close() { a.http.CloseIdleConnections() }

// client returns a natter client (the public client package) on the shared HTTP client.
func (a *api) client(token string) *client.Client {
	opts := []client.Option{client.WithHTTPClient(a.http)}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	return client.New(a.base, opts...)
}

// signIn signs name in as a guest and returns the session token.
func (a *api) signIn(ctx context.Context, name string) (string, error) {
	// Tried once: a server refusing sign-ins would make the client wait out its Retry-After
	// (20 s and more), and the run end at its --duration cap with no word of why.
	c := client.New(a.base, client.WithHTTPClient(a.http), client.WithRetry(1, 0, 0))
	if err := c.SignIn(ctx, name, ""); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("nothing listens at %s: start natter serve there, or use --spawn", a.base)
		}
		switch natter.ErrorCode(err) {
		case natter.EUNAUTHORIZED:
			return "", fmt.Errorf("sign in as guest %q: %w (the server must allow guests: natter serve --guests)", name, err)
		case natter.ERATELIMITED:
			return "", fmt.Errorf("sign in as guest %q: %w (the server limits sign-ins per address: start it with --signin-rate -1, as --spawn does)", name, err)
		}
		return "", fmt.Errorf("sign in as guest %q: %w", name, err)
	}
	return c.Token(), nil
}

// roomInfo is the part of a room the load generator needs.
type roomInfo struct {
	Name    string
	LastSeq int64
}

// ensureRoom creates room, or finds it if it exists, and returns its current last seq.
func (a *api) ensureRoom(ctx context.Context, token, name string) (roomInfo, error) {
	room, err := a.client(token).CreateRoom(ctx, name, "natter bench")
	if natter.ErrorCode(err) == natter.ECONFLICT {
		return a.room(ctx, token, name)
	}
	if natter.ErrorCode(err) == natter.ERATELIMITED {
		return roomInfo{}, fmt.Errorf("create room %q: %w (the server limits the rooms a user makes: start it with --room-rate -1, as --spawn does)", name, err)
	}
	if err != nil {
		return roomInfo{}, fmt.Errorf("create room %q: %w", name, err)
	}
	return roomInfo{Name: room.Name, LastSeq: room.LastSeq}, nil
}

// room reads the room's last seq.
func (a *api) room(ctx context.Context, token, name string) (roomInfo, error) {
	page, err := a.client(token).Messages(ctx, name, client.Query{After: 0, Limit: 1})
	if err != nil {
		return roomInfo{}, fmt.Errorf("read room %q: %w", name, err)
	}
	return roomInfo{Name: name, LastSeq: page.LastSeq}, nil
}

// wsURL turns the base http(s) URL into the WebSocket endpoint.
func wsURL(base string) string {
	switch {
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://") + "/ws"
	default:
		return "ws://" + strings.TrimPrefix(base, "http://") + "/ws"
	}
}
