package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"natter/app"
	"natter/server"
)

// testServer is a whole natter (real SQLite file, hub, HTTP server) on a random loopback port.
type testServer struct {
	t    *testing.T
	URL  string
	Addr string
	Main *app.Main
	cfg  app.Config
}

// startServer starts natter in a temp dir; mutate may adjust the config first.
func startServer(t *testing.T, mutate ...func(*app.Config)) *testServer {
	t.Helper()
	cfg := app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:    "NORMAL",
		Server:  server.Config{Guests: true, SendRate: -1},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ts := &testServer{t: t, cfg: cfg}
	ts.open()
	t.Cleanup(func() { ts.close() })
	return ts
}

func (ts *testServer) open() {
	ts.t.Helper()
	m, err := app.Open(context.Background(), ts.cfg)
	if err != nil {
		ts.t.Fatalf("start natter: %v", err)
	}
	ts.Main, ts.URL, ts.Addr = m, m.URL(), m.Addr().String()
	ts.cfg.Addr = ts.Addr // a restart reuses the port
}

func (ts *testServer) close() {
	if ts.Main == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Main.Close(ctx); err != nil {
		ts.t.Errorf("close natter: %v", err)
	}
	ts.Main = nil
}

// restart closes natter and opens it again on the same address and data dir.
func (ts *testServer) restart() {
	ts.t.Helper()
	ts.close()
	ts.open()
}

// apiResponse is a decoded JSON answer.
type apiResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// errorCode returns the contract error code of an error answer.
func (r apiResponse) errorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request with an optional bearer token and JSON body (a []byte body is sent as is).
func (ts *testServer) do(method, path, token string, body any, hdr ...string) apiResponse {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		json.Unmarshal(raw, &out.Body)
	}
	return out
}

// signIn signs name in as a guest and returns the token.
func (ts *testServer) signIn(name string) string {
	ts.t.Helper()
	r := ts.do("POST", "/api/session", "", map[string]string{"name": name})
	if r.Status != http.StatusOK {
		ts.t.Fatalf("sign in %s: %d %s", name, r.Status, r.Raw)
	}
	return r.Body["token"].(string)
}
