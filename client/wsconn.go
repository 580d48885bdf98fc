package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"natter"
	"natter/ws"
)

// Frame is one decoded server-to-client WebSocket frame. Type says which fields are set:
//
//	message     Message
//	subscribed  Room, Epoch, LastSeq
//	ack         ClientID, Seq (and Room, Created where the server sends them)
//	error       Code, ErrMessage, Ref
//	presence    Room, Online
//	join, leave Room, User
//
// Frame types this client doesn't know keep only Type and Raw.
type Frame struct {
	Type       string
	Room       string
	Message    *natter.Message
	Epoch      string
	LastSeq    int64
	ClientID   string
	Seq        int64
	Created    bool
	Code       string
	ErrMessage string
	Ref        string
	Online     []string
	User       string
	Title      string // a "room" frame's title of Room
	Topic      string // a "room" frame's topic of Room ("" for none)
	Raw        []byte // the frame's JSON as received
}

// Err returns the *natter.Error an error frame carries, or nil for other frames.
func (f *Frame) Err() error {
	if f.Type != "error" {
		return nil
	}
	return &natter.Error{Code: f.Code, Message: f.ErrMessage}
}

// wireFrame is the JSON shape of every server frame; "message" is an object in message frames
// and a sentence in error frames.
type wireFrame struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	Message  json.RawMessage `json:"message"`
	Epoch    string          `json:"epoch"`
	LastSeq  int64           `json:"last_seq"`
	ClientID string          `json:"client_id"`
	Seq      int64           `json:"seq"`
	Created  bool            `json:"created"`
	Code     string          `json:"code"`
	Ref      string          `json:"ref"`
	Online   []string        `json:"online"`
	User     string          `json:"user"`
	Title    string          `json:"title"`
	Topic    string          `json:"topic"`
}

// decodeFrame parses one server frame.
func decodeFrame(data []byte) (Frame, error) {
	var w wireFrame
	if err := json.Unmarshal(data, &w); err != nil {
		return Frame{}, fmt.Errorf("natter client: server frame is not JSON: %w", err)
	}
	f := Frame{
		Type: w.Type, Room: w.Room, Epoch: w.Epoch, LastSeq: w.LastSeq, ClientID: w.ClientID,
		Seq: w.Seq, Created: w.Created, Code: w.Code, Ref: w.Ref, Online: w.Online, User: w.User,
		Title: w.Title, Topic: w.Topic, Raw: data,
	}
	if len(w.Message) > 0 {
		switch w.Message[0] {
		case '{':
			f.Message = new(natter.Message)
			if err := json.Unmarshal(w.Message, f.Message); err != nil {
				return Frame{}, fmt.Errorf("natter client: bad message in %s frame: %w", w.Type, err)
			}
		case '"':
			if err := json.Unmarshal(w.Message, &f.ErrMessage); err != nil {
				return Frame{}, fmt.Errorf("natter client: bad message in %s frame: %w", w.Type, err)
			}
		}
	}
	if f.Type == "message" && f.Message == nil {
		return Frame{}, errors.New("natter client: message frame without a message")
	}
	return f, nil
}

// WSConn is a raw WebSocket session with the server, for apps that drive the protocol
// themselves (Subscribe does this for you, with reconnects). Writes are safe for concurrent use;
// ReadFrame must be called from one goroutine. If a call's ctx ends while it is blocked, the
// connection is closed.
type WSConn struct {
	conn *ws.Conn
}

// DialWS opens a WebSocket to the server's /ws with the Client's token. A refused handshake comes
// back as *natter.Error (e.g. EUNAUTHORIZED, EFORBIDDEN for a foreign Origin). header, if given,
// adds headers such as Origin to the handshake.
func (c *Client) DialWS(ctx context.Context, header ...http.Header) (*WSConn, error) {
	if c.base == nil {
		return nil, &natter.Error{Code: natter.EINVALID, Message: "the client's base URL is not an http:// or https:// URL"}
	}
	h := http.Header{}
	for _, extra := range header {
		for k, vs := range extra {
			h[k] = append(h[k], vs...)
		}
	}
	c.authorize(h)
	target := c.endpoint("/ws")
	target = "ws" + strings.TrimPrefix(target, "http") // http -> ws, https -> wss
	conn, resp, err := c.dialer.Dial(ctx, target, h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			return nil, refusal(resp, body)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("natter client: websocket: %w", err)
	}
	return &WSConn{conn: conn}, nil
}

// SetIdleTimeout makes ReadFrame fail when nothing at all, not even a server ping, arrives for d;
// d <= 0 turns it off. Call it from the reading goroutine.
func (w *WSConn) SetIdleTimeout(d time.Duration) { w.conn.SetIdleTimeout(d) }

// Subscribe asks for room's messages with seq > after, then live ones. A negative after
// subscribes live from now, without a replay.
func (w *WSConn) Subscribe(ctx context.Context, room string, after int64) error {
	f := struct {
		Type  string `json:"type"`
		Room  string `json:"room"`
		After *int64 `json:"after,omitempty"`
	}{Type: "subscribe", Room: room}
	if after >= 0 {
		f.After = &after
	}
	return w.writeJSON(ctx, f)
}

// Unsubscribe stops room's messages.
func (w *WSConn) Unsubscribe(ctx context.Context, room string) error {
	return w.writeJSON(ctx, struct {
		Type string `json:"type"`
		Room string `json:"room"`
	}{"unsubscribe", room})
}

// Typing tells the room's other subscribers that this user is typing in room, which this
// connection must be subscribed to (otherwise an error frame whose Ref is room answers). They get
// a "typing" frame with User set; the server passes on at most one every 2 s per user and room
// and drops the rest. Send one every few seconds while the user types.
func (w *WSConn) Typing(ctx context.Context, room string) error {
	return w.writeJSON(ctx, struct {
		Type string `json:"type"`
		Room string `json:"room"`
	}{"typing", room})
}

// MarkRead moves this account's read mark in room to seq (of the room's epoch), as
// Client.MarkRead does, on this connection. No frame answers it when it is stored; an error
// frame whose Ref is "read" answers a refusal.
func (w *WSConn) MarkRead(ctx context.Context, room, epoch string, seq int64) error {
	return w.writeJSON(ctx, struct {
		Type  string `json:"type"`
		Room  string `json:"room"`
		Epoch string `json:"epoch"`
		Seq   int64  `json:"seq"`
	}{"read", room, epoch, seq})
}

// Send asks the server to store a message; an ack frame (or an error frame whose Ref is clientID)
// answers it. Use a fresh clientID (NewClientID) per message and the same one for a retry.
func (w *WSConn) Send(ctx context.Context, room, body, clientID string) error {
	return w.writeJSON(ctx, struct {
		Type     string `json:"type"`
		Room     string `json:"room"`
		Body     string `json:"body"`
		ClientID string `json:"client_id,omitempty"`
	}{"send", room, body, clientID})
}

// ReadFrame returns the next frame from the server. Pings are answered inside. When the server
// closes the connection, the error is a *ws.CloseError (code ws.CloseSlow for a client that fell
// behind, ws.CloseGoingAway for a server shutting down).
func (w *WSConn) ReadFrame(ctx context.Context) (Frame, error) {
	var (
		op   ws.Opcode
		data []byte
		err  error
	)
	if ctxErr := w.whileCtx(ctx, func() { op, data, err = w.conn.ReadMessage() }); ctxErr != nil {
		return Frame{}, ctxErr
	}
	if err != nil {
		return Frame{}, err
	}
	if op != ws.OpText {
		return Frame{}, fmt.Errorf("natter client: server sent a %v frame; the protocol uses text", op)
	}
	return decodeFrame(data)
}

// Close closes the connection, with a normal close frame first when possible.
func (w *WSConn) Close() error {
	w.conn.WriteClose(ws.CloseNormal, "")
	return w.conn.Close()
}

// writeJSON sends v as one text frame.
func (w *WSConn) writeJSON(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var werr error
	if ctxErr := w.whileCtx(ctx, func() { werr = w.conn.WriteMessage(ws.OpText, data) }); ctxErr != nil {
		return ctxErr
	}
	return werr
}

// whileCtx runs f, closing the connection if ctx ends first so that f returns. It returns
// ctx's error when that happened.
func (w *WSConn) whileCtx(ctx context.Context, f func()) error {
	if ctx.Done() == nil {
		f()
		return nil
	}
	if err := ctx.Err(); err != nil {
		w.conn.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { w.conn.Close() })
	f()
	if !stop() {
		return ctx.Err()
	}
	return nil
}
