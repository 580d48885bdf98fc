package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultClientMaxMessage is a client Conn's message limit until SetReadLimit changes it. It is
// larger than a server's because a client trusts its server more than a server trusts clients.
const DefaultClientMaxMessage = 16 << 20

// maxErrorBody bounds how much of a refused handshake's response body Dial keeps for the caller.
const maxErrorBody = 64 << 10

// Conn is the client side of a WebSocket connection. WriteMessage, WriteClose and Close are safe
// for concurrent use; ReadMessage must be called from one goroutine at a time. ReadMessage answers
// pings and echoes close frames itself.
type Conn struct {
	conn net.Conn
	r    *Reader
	idle time.Duration // see SetIdleTimeout; used by the reading goroutine only

	wmu       sync.Mutex // serializes frames on the wire and guards wbuf and closeSent
	wbuf      []byte
	closeSent bool
}

// Dialer opens client connections. The zero value dials with net.Dialer and the default TLS
// configuration.
type Dialer struct {
	// NetDial dials the TCP connection; nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss:// URLs; nil means the defaults. ServerName defaults to the host.
	TLSConfig *tls.Config
	// ReadLimit is the initial message limit of dialed connections; <= 0 means
	// DefaultClientMaxMessage.
	ReadLimit int
}

// Dial opens a WebSocket connection with the zero Dialer; see Dialer.Dial.
func Dial(ctx context.Context, rawURL string, header http.Header) (*Conn, *http.Response, error) {
	var d Dialer
	return d.Dial(ctx, rawURL, header)
}

// Dial opens a WebSocket connection to rawURL (ws://, wss://, or http:// and https:// taken as
// ws:// and wss://), sending header with the handshake request (e.g. Origin, Authorization). ctx
// bounds the dial and the handshake only. It verifies Sec-WebSocket-Accept. When the server
// answers with anything but 101, Dial returns that response (its body buffered, up to 64 KiB) and
// an error wrapping ErrBadHandshake that includes the status.
func (d *Dialer) Dial(ctx context.Context, rawURL string, header http.Header) (*Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: dial: %w", err)
	}
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
	case "wss", "https":
		secure = true
	default:
		return nil, nil, fmt.Errorf("ws: dial %s: unsupported scheme %q", rawURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("ws: dial %s: no host", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		if secure {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}

	dial := d.NetDial
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: dial %s: %w", rawURL, err)
	}
	// The handshake runs on a plain connection, so ctx reaches it through deadlines.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	c, resp, err := d.handshake(ctx, conn, u, secure, header)
	if !stop() && err == nil {
		err = ctx.Err() // ctx ended after the handshake succeeded but may have cut the deadline
	}
	if err != nil {
		conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ErrBadHandshake) {
			err = fmt.Errorf("ws: dial %s: %w", rawURL, ctxErr)
		}
		return nil, resp, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, resp, err
	}
	return c, resp, nil
}

// handshake runs TLS (for wss) and the opening handshake on conn.
func (d *Dialer) handshake(ctx context.Context, conn net.Conn, u *url.URL, secure bool, header http.Header) (*Conn, *http.Response, error) {
	netConn := conn
	if secure {
		cfg := d.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		// Offer only HTTP/1.1: the upgrade doesn't exist in HTTP/2 as served by net/http.
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("ws: tls handshake: %w", err)
		}
		netConn = tc
	}

	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])

	reqURL := *u
	reqURL.Scheme = "http"
	if secure {
		reqURL.Scheme = "https"
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	h.Del("Sec-WebSocket-Extensions") // no extension is implemented, so none may be offered
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &reqURL,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	req = req.WithContext(ctx)
	if err := req.Write(netConn); err != nil {
		return nil, nil, fmt.Errorf("ws: write handshake: %w", err)
	}

	br := bufio.NewReaderSize(netConn, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: read handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil, resp, fmt.Errorf("%w: server answered %s", ErrBadHandshake, resp.Status)
	}
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return nil, resp, fmt.Errorf("%w: response Upgrade header is not websocket", ErrBadHandshake)
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return nil, resp, fmt.Errorf("%w: response Connection header lacks upgrade", ErrBadHandshake)
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return nil, resp, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrBadHandshake)
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return nil, resp, fmt.Errorf("%w: server chose an extension that was not offered", ErrBadHandshake)
	}
	resp.Body = http.NoBody

	// Frames the server sent right after its response may already sit in br.
	if n := br.Buffered(); n > 0 {
		pending, _ := br.Peek(n)
		netConn = &replayConn{Conn: netConn, pending: bytes.Clone(pending)}
	}
	limit := d.ReadLimit
	if limit <= 0 {
		limit = DefaultClientMaxMessage
	}
	return &Conn{conn: netConn, r: NewReader(SocketReader(netConn), false, limit)}, resp, nil
}

// ReadMessage returns the next data message (OpText or OpBinary). Pings are answered with pongs
// and pongs are skipped. When the server sends a close frame, ReadMessage echoes it (unless
// WriteClose was called already) and returns the *CloseError; after a protocol error it sends the
// matching close frame and returns the error. The payload is a fresh slice the caller owns.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	for {
		if c.idle > 0 {
			// Renewed for every frame, pings included, so an idle but healthy connection lives.
			if err := c.conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
				return 0, nil, err
			}
		}
		op, p, err := c.r.ReadMessage()
		if err != nil {
			var ce *CloseError
			if errors.As(err, &ce) {
				c.write(OpClose, ClosePayload(ce.Code, ""))
			} else if code := CloseCodeFor(err); code != 0 {
				c.write(OpClose, ClosePayload(code, ""))
			}
			return op, nil, err
		}
		switch op {
		case OpPing:
			if err := c.write(OpPong, p); err != nil && !errors.Is(err, ErrCloseSent) {
				return 0, nil, err
			}
		case OpPong:
		default:
			return op, p, nil
		}
	}
}

// WriteMessage sends p as one frame with opcode op. Control frames (OpPing, OpPong, OpClose) carry
// at most 125 bytes. After a close frame was sent it returns ErrCloseSent.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	switch op {
	case OpText, OpBinary, OpPing, OpPong, OpClose:
	default:
		return fmt.Errorf("ws: WriteMessage: invalid opcode %v", op)
	}
	if op.isControl() && len(p) > maxControlPayload {
		return fmt.Errorf("ws: WriteMessage: %v payload of %d bytes exceeds 125", op, len(p))
	}
	return c.write(op, p)
}

// WriteClose sends a close frame with code and reason (truncated to fit) and does not wait for the
// answer: keep calling ReadMessage until it returns the server's *CloseError, then Close.
func (c *Conn) WriteClose(code int, reason string) error {
	return c.write(OpClose, ClosePayload(code, reason))
}

// write masks p into one frame with a fresh key and writes it.
func (c *Conn) write(op Opcode, p []byte) error {
	var key [4]byte
	rand.Read(key[:])
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	if op == OpClose {
		c.closeSent = true
	}
	c.wbuf = AppendMaskedFrame(c.wbuf[:0], op, p, key)
	_, err := c.conn.Write(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // don't pin the buffer of a rare big message for the connection's life
	}
	return err
}

// Close closes the network connection at once, without a close handshake (see WriteClose).
func (c *Conn) Close() error { return c.conn.Close() }

// NetConn returns the underlying connection, e.g. to set deadlines. Reading from it directly
// corrupts the stream.
func (c *Conn) NetConn() net.Conn { return c.conn }

// SetIdleTimeout makes ReadMessage fail with a timeout error (a net.Error) when no frame at all,
// not even a ping, arrives for d: a peer that pings idle connections is then known to be gone
// even if the network never says so. d <= 0 turns the timeout off. Call it from the reading
// goroutine.
func (c *Conn) SetIdleTimeout(d time.Duration) {
	c.idle = d
	if d <= 0 {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// SetReadLimit sets the largest message ReadMessage accepts; larger ones fail with ErrTooLarge.
// n <= 0 means DefaultMaxMessage. Call it from the reading goroutine.
func (c *Conn) SetReadLimit(n int) { c.r.SetLimit(n) }
