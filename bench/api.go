package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
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

// api is a minimal JSON client for the calls the load generator makes besides the hot paths.
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

// apiError is an error answer of the server, in the contract's shape.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// do sends a JSON request with an optional bearer token and decodes a JSON answer into out.
func (a *api) do(ctx context.Context, method, path, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(data, &e)
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: bad JSON answer: %v", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// signIn signs name in as a guest and returns the session token.
func (a *api) signIn(ctx context.Context, name string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	_, err := a.do(ctx, http.MethodPost, "/api/session", "", map[string]string{"name": name}, &out)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			return "", fmt.Errorf("sign in as guest %q: %w (the server must allow guests: natter serve --guests)", name, err)
		}
		return "", fmt.Errorf("sign in as guest %q: %w", name, err)
	}
	if out.Token == "" {
		return "", fmt.Errorf("sign in as guest %q: no token in the answer", name)
	}
	return out.Token, nil
}

// roomInfo is the part of a room the load generator needs.
type roomInfo struct {
	Name    string `json:"name"`
	LastSeq int64  `json:"last_seq"`
}

// ensureRoom creates room, or finds it if it exists, and returns its current last seq.
func (a *api) ensureRoom(ctx context.Context, token, name string) (roomInfo, error) {
	var out struct {
		Room roomInfo `json:"room"`
	}
	_, err := a.do(ctx, http.MethodPost, "/api/rooms", token, map[string]string{"name": name, "title": "natter bench"}, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		return a.room(ctx, token, name)
	}
	if err != nil {
		return roomInfo{}, fmt.Errorf("create room %q: %w", name, err)
	}
	return out.Room, nil
}

func (a *api) room(ctx context.Context, token, name string) (roomInfo, error) {
	var out struct {
		Room roomInfo `json:"room"`
	}
	if _, err := a.do(ctx, http.MethodGet, "/api/rooms/"+url.PathEscape(name), token, nil, &out); err != nil {
		return roomInfo{}, fmt.Errorf("read room %q: %w", name, err)
	}
	return out.Room, nil
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
