package ws

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"unicode/utf8"
)

// readBufferSize is the size of Reader's inline buffer: big enough that one read takes a frame
// header and a small control frame (subscribe, ping) whole, small enough that an idle connection
// (most of them, on a chat server) carries little: it counts twice in RSS, once live and once as
// GC headroom. Longer payloads are read straight into the message slice.
const readBufferSize = 128

// DefaultMaxMessage is the message limit NewReader uses when given maxMessage <= 0.
const DefaultMaxMessage = 1 << 20

// minGrow is the smallest step by which a message buffer grows while its payload streams in. The
// buffer grows in steps rather than to the announced length so that a peer can't make us allocate
// maxMessage bytes by sending only a frame header.
const minGrow = 4096

// Reader decodes frames from one connection and returns whole messages. It holds a fixed inline
// buffer and allocates nothing while the connection is idle. A Reader is not safe for concurrent
// use; after ReadMessage returns an error other than *CloseError its state is undefined and the
// connection should be closed (after sending the close code CloseCodeFor reports).
type Reader struct {
	src    io.Reader
	server bool // require masked frames (server side) or unmasked ones (client side)
	max    int

	// A fragmented message in progress; fragOp is OpContinuation when there is none.
	fragOp Opcode
	frag   []byte

	start, end int // buffered bytes are buf[start:end]
	buf        [readBufferSize]byte
}

// NewReader returns a Reader of r. A server-side reader (server true) requires masked frames and a
// client-side one unmasked frames, as RFC 6455 section 5.1 demands. maxMessage bounds a whole,
// reassembled message; maxMessage <= 0 means DefaultMaxMessage.
func NewReader(r io.Reader, server bool, maxMessage int) *Reader {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	return &Reader{src: r, server: server, max: maxMessage}
}

// SetLimit changes the message limit; n <= 0 means DefaultMaxMessage.
func (r *Reader) SetLimit(n int) {
	if n <= 0 {
		n = DefaultMaxMessage
	}
	r.max = n
}

// ReadMessage returns the next data message (OpText or OpBinary, reassembled from its fragments)
// or control frame (OpPing or OpPong with its payload). Control frames may arrive between the
// fragments of a message; they are returned at once and the message continues on the next call.
// A close frame is returned as a *CloseError with op OpClose.
//
// Every returned payload is a fresh slice that the caller owns. Text messages are valid UTF-8.
// Errors: ErrTooLarge; a *ProtocolError (errors.Is ErrProtocol) whose Code is the close code to
// send; io.EOF when the connection ends between frames; io.ErrUnexpectedEOF or the read error when
// it ends inside one.
func (r *Reader) ReadMessage() (Opcode, []byte, error) {
	for {
		fin, op, key, n, err := r.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if op.isControl() {
			p, err := r.readPayload(make([]byte, 0, n), n, key, true)
			if err != nil {
				return 0, nil, err
			}
			if op == OpClose {
				return OpClose, nil, parseClose(p)
			}
			return op, p, nil
		}

		if err := r.fragmentError(op); err != nil {
			return 0, nil, err
		}
		if op != OpContinuation {
			if fin {
				p, err := r.readPayload(nil, n, key, true)
				if err != nil {
					return 0, nil, err
				}
				return finishMessage(op, p)
			}
			r.fragOp = op
			r.frag = nil
		}

		r.frag, err = r.readPayload(r.frag, n, key, fin)
		if err != nil {
			return 0, nil, err
		}
		if fin {
			op, p := r.fragOp, r.frag
			r.fragOp, r.frag = OpContinuation, nil
			return finishMessage(op, p)
		}
	}
}

// finishMessage validates a complete data message.
func finishMessage(op Opcode, p []byte) (Opcode, []byte, error) {
	if op == OpText && !utf8.Valid(p) {
		return 0, nil, &ProtocolError{Code: CloseInvalidPayload, Msg: "text message is not valid UTF-8", Text: true}
	}
	if p == nil {
		p = []byte{} // an empty message is still a message; callers shouldn't see nil
	}
	return op, p, nil
}

// parseClose turns a close frame payload into the *CloseError ReadMessage returns, or a protocol
// error when the payload is malformed (RFC 6455 sections 5.5.1 and 7.4).
func parseClose(p []byte) error {
	switch {
	case len(p) == 0:
		return &CloseError{Code: CloseNoStatus}
	case len(p) == 1:
		return protocolError("close frame payload of 1 byte")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return protocolError("invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return &ProtocolError{Code: CloseInvalidPayload, Msg: "close reason is not valid UTF-8"}
	}
	return &CloseError{Code: code, Reason: string(p[2:])}
}

// readHeader reads and validates one frame header. n is the payload length, already checked
// against the message limit for data frames.
func (r *Reader) readHeader() (fin bool, op Opcode, key [4]byte, n int, err error) {
	if err = r.fill(2); err != nil {
		if err == io.ErrUnexpectedEOF && r.end == r.start {
			err = io.EOF // the connection ended between frames: a clean end of stream
		}
		return
	}
	h, err := r.parseHeader(r.buf[r.start:r.end])
	if err == nil && !h.complete {
		if err = r.fill(h.hlen); err != nil {
			return
		}
		h, err = r.parseHeader(r.buf[r.start:r.end])
	}
	if err != nil {
		return h.fin, h.op, key, 0, err
	}
	r.start += h.hlen
	return h.fin, h.op, h.key, int(h.length), nil
}

// header is what parseHeader read of a frame header.
type header struct {
	fin      bool
	op       Opcode
	key      [4]byte
	hlen     int    // the header's length, known from its first 2 bytes
	length   uint64 // the payload's length, once complete
	complete bool   // the whole header was there
}

// parseHeader validates the frame header at the start of b (at least 2 bytes) in the order
// readHeader has always checked it: the first 2 bytes, then, if b holds the whole header, the
// length against its encoding and the message limit. An error means ReadMessage refuses the frame
// with it; without one, h.complete tells whether b held the whole header.
func (r *Reader) parseHeader(b []byte) (h header, err error) {
	b0, b1 := b[0], b[1]
	h.fin = b0&0x80 != 0
	h.op = Opcode(b0 & 0x0f)
	masked := b1&0x80 != 0
	len7 := int(b1 & 0x7f)

	if b0&0x70 != 0 {
		return h, protocolError("reserved bits set without a negotiated extension")
	}
	switch h.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, protocolError("reserved opcode %d", byte(h.op))
	}
	if h.op.isControl() {
		if !h.fin {
			return h, protocolError("fragmented %v frame", h.op)
		}
		if len7 > maxControlPayload {
			return h, protocolError("%v frame longer than 125 bytes", h.op)
		}
	}
	if masked != r.server {
		if r.server {
			return h, protocolError("unmasked frame from a client")
		}
		return h, protocolError("masked frame from a server")
	}

	h.hlen = 2
	switch len7 {
	case 126:
		h.hlen += 2
	case 127:
		h.hlen += 8
	}
	if masked {
		h.hlen += 4
	}
	if len(b) < h.hlen {
		return h, nil
	}
	h.complete = true
	switch len7 {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
		if h.length < 126 {
			return h, protocolError("non-minimal 16-bit payload length %d", h.length)
		}
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:])
		if h.length>>63 != 0 {
			return h, protocolError("payload length with the most significant bit set")
		}
		if h.length <= 0xffff {
			return h, protocolError("non-minimal 64-bit payload length %d", h.length)
		}
	default:
		h.length = uint64(len7)
	}
	if masked {
		copy(h.key[:], b[h.hlen-4:h.hlen])
	}
	if !h.op.isControl() && h.length > uint64(r.max-len(r.frag)) {
		return h, ErrTooLarge
	}
	return h, nil
}

// HeaderError returns the error with which ReadMessage will refuse the frame that b begins, as
// far as b tells (its header may be incomplete, and its payload is not looked at), given the
// message in progress; nil if nothing in b is wrong yet. A caller that feeds the Reader whole
// frames (see FrameLen) uses it to refuse a frame from its header, as a Reader reading the
// connection itself would, instead of waiting for a payload it will refuse.
func (r *Reader) HeaderError(b []byte) error {
	if len(b) < 2 {
		return nil
	}
	h, err := r.parseHeader(b)
	if err != nil || !h.complete || h.op.isControl() {
		return err
	}
	return r.fragmentError(h.op)
}

// fragmentError checks a data frame's opcode against the message in progress.
func (r *Reader) fragmentError(op Opcode) error {
	switch {
	case op != OpContinuation && r.fragOp != OpContinuation:
		return protocolError("%v frame inside a fragmented message", op)
	case op == OpContinuation && r.fragOp == OpContinuation:
		return protocolError("continuation frame without a message to continue")
	}
	return nil
}

// readPayload appends the n-byte payload of the current frame to dst, unmasks it with key (on
// the server side) and returns the extended slice. Bytes already buffered are copied; the rest is
// read straight into dst, so a big payload doesn't pass through the small buffer. fin tells
// whether this frame ends its message, so that dst may be sized exactly.
func (r *Reader) readPayload(dst []byte, n int, key [4]byte, fin bool) ([]byte, error) {
	off := len(dst)
	// The final frame's length bounds the message; a non-final one only r.max does.
	limit := r.max
	if fin {
		limit = off + n
	}
	for left := n; left > 0; {
		if r.start == r.end {
			if left < readBufferSize {
				// Small remainder: read into the buffer, which may also pick up the next frames
				// and save a syscall.
				if err := r.fill(1); err != nil {
					return nil, err
				}
				continue
			}
			dst = grow(dst, 1, limit)
			k := min(left, cap(dst)-len(dst))
			m := len(dst)
			dst = dst[:m+k]
			if _, err := io.ReadFull(r.src, dst[m:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			left -= k
			continue
		}
		k := min(left, r.end-r.start)
		dst = grow(dst, k, limit)
		dst = append(dst, r.buf[r.start:r.start+k]...)
		r.start += k
		left -= k
	}
	if r.server {
		maskBytes(dst[off:], key)
	}
	return dst, nil
}

// grow returns b with room for need more bytes. Capacity doubles (from minGrow) so that a message
// of many small fragments costs amortized linear time, but never exceeds limit, and grows only
// as bytes arrive: a peer that announces a long payload and sends nothing costs at most minGrow.
func grow(b []byte, need, limit int) []byte {
	if cap(b)-len(b) >= need {
		return b
	}
	newCap := max(len(b)+need, min(limit, max(2*cap(b), minGrow)))
	nb := make([]byte, len(b), newCap)
	copy(nb, b)
	return nb
}

// errNoProgress guards against an io.Reader that keeps returning 0, nil.
var errNoProgress = errors.New("ws: reader returned no data and no error")

// fill makes at least n (<= readBufferSize) bytes available in buf[start:end]. A connection that
// ends before that yields io.ErrUnexpectedEOF.
func (r *Reader) fill(n int) error {
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	if r.end-r.start >= n {
		return nil
	}
	if r.start+n > len(r.buf) {
		r.end = copy(r.buf[:], r.buf[r.start:r.end])
		r.start = 0
	}
	for empty := 0; r.end-r.start < n; {
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		if r.end-r.start >= n {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if m == 0 {
			if empty++; empty > 100 {
				return errNoProgress
			}
		}
	}
	return nil
}

// Reset makes r read a new stream from src, with no message in progress and nothing buffered,
// as NewReader leaves it (the side and the limit stay).
func (r *Reader) Reset(src io.Reader) {
	r.src = src
	r.fragOp, r.frag = OpContinuation, nil
	r.start, r.end = 0, 0
}

// InMessage reports whether a fragmented message is partly read: more of it is to come.
func (r *Reader) InMessage() bool { return r.fragOp != OpContinuation }

// FrameLen returns the length of the frame at the start of b, header and payload, or 0 if b does
// not yet hold its whole header; a length beyond what an int64 holds is math.MaxInt64. It checks
// nothing else: ReadMessage validates the frame.
//
// A caller that hands a Reader only whole frames (FrameLen says where they end) can feed it as
// bytes arrive: when the source runs dry ReadMessage returns io.EOF at a frame boundary, with any
// fragmented message kept, and the next call after more whole frames go on where it stopped.
func FrameLen(b []byte) int64 {
	if len(b) < 2 {
		return 0
	}
	hlen, n := int64(2), int64(b[1]&0x7f)
	switch n {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if b[1]&0x80 != 0 {
		hlen += 4
	}
	if int64(len(b)) < hlen {
		return 0
	}
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u > math.MaxInt64-uint64(hlen) {
			return math.MaxInt64 // ReadMessage refuses it (top bit set, or over any limit)
		}
		n = int64(u)
	}
	return hlen + n
}

// Buffered reports how many bytes r has read from its source and not yet decoded.
func (r *Reader) Buffered() int { return r.end - r.start }
