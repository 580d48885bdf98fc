package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// acceptGUID is the fixed string RFC 6455 section 1.3 appends to the client's key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerHasToken reports whether any value of the comma-separated header name contains token,
// compared case-insensitively (Connection: keep-alive, Upgrade is common in browsers).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Upgrade completes the server side of the opening handshake: it validates r (GET, HTTP/1.1,
// Connection: upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13, a base64 16-byte
// Sec-WebSocket-Key), hijacks the connection, clears the deadlines net/http left on it and writes
// the 101 response with the extra headers h. No extension is negotiated. Origin checks are the
// caller's job, before Upgrade.
//
// Bytes the client sent after its request are replayed by the returned net.Conn before anything
// read from the socket; otherwise the hijacked connection itself is returned, so that no bufio
// buffer stays alive per connection. On a bad handshake Upgrade answers 400 (426 with
// Sec-WebSocket-Version: 13 for an unsupported version) and returns an error wrapping
// ErrBadHandshake.
func Upgrade(w http.ResponseWriter, r *http.Request, h http.Header) (net.Conn, error) {
	fail := func(status int, msg string) (net.Conn, error) {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, msg, status)
		return nil, fmt.Errorf("%w: %s", ErrBadHandshake, msg)
	}
	if r.Method != http.MethodGet {
		return fail(http.StatusBadRequest, "websocket: the method must be GET")
	}
	if !r.ProtoAtLeast(1, 1) || r.ProtoMajor != 1 {
		return fail(http.StatusBadRequest, "websocket: HTTP/1.1 is required")
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return fail(http.StatusBadRequest, "websocket: the Connection header must contain upgrade")
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		return fail(http.StatusBadRequest, "websocket: the Upgrade header must be websocket")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return fail(http.StatusUpgradeRequired, "websocket: only version 13 is supported")
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return fail(http.StatusBadRequest, "websocket: Sec-WebSocket-Key must be 16 bytes in base64")
	}

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "websocket: connection can't be hijacked", http.StatusInternalServerError)
		return nil, fmt.Errorf("%w: hijack: %v", ErrBadHandshake, err)
	}
	// net/http may have set its read and write timeouts on the connection; from here on the
	// caller owns the deadlines.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}

	var resp bytes.Buffer
	resp.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	resp.WriteString(acceptKey(key))
	resp.WriteString("\r\n")
	if err := h.Write(&resp); err != nil { // Header.Write sanitizes CR and LF in values
		conn.Close()
		return nil, err
	}
	resp.WriteString("\r\n")
	if _, err := conn.Write(resp.Bytes()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ws: write handshake: %w", err)
	}

	// Copy what the client pipelined after its request, and let brw (with its 4 KiB buffers) go.
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		return &replayConn{Conn: conn, pending: bytes.Clone(pending)}, nil
	}
	return conn, nil
}

// replayConn is a net.Conn whose first reads return bytes read ahead of the WebSocket stream
// (by net/http on the server, by the handshake parser on the client).
type replayConn struct {
	net.Conn
	pending []byte
	src     io.Reader // what to read after pending; nil means Conn (SocketReader sets it)
}

// Read returns the pending bytes first, then reads the connection.
func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	if c.src != nil {
		return c.src.Read(p)
	}
	return c.Conn.Read(p)
}
