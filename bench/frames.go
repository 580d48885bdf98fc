package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"natter/ws"
)

// frameBufSize is a connection's read buffer: a message frame of the load generator is about 250
// bytes, so one read usually takes several. A frame too big for it (a presence list of many
// users) grows the buffer.
const frameBufSize = 4096

// maxFrame bounds one server frame.
const maxFrame = 64 << 20

// frameReader decodes server-to-client WebSocket frames from one buffer as the bytes arrive
// and, unlike ws.Conn.ReadMessage, without allocating for each message: the payload handed to
// the callback aliases the buffer and is valid only during the call. Servers never mask; control
// frames are at most 125 bytes; fragments are reassembled into an allocated slice (natter never
// fragments).
type frameReader struct {
	buf        []byte
	start, end int // buf[start:end] is read and not yet decoded
	frag       []byte
	fragOp     ws.Opcode
	inFrag     bool
	fn         func(ws.Opcode, []byte) error
}

func newFrameReader() *frameReader {
	return &frameReader{buf: make([]byte, frameBufSize)}
}

// run reads c (a WebSocket's connection, with any bytes read ahead) and calls fn for every
// message (text or binary, reassembled) or control frame, until fn or the connection fails. On a
// socket that gets one frame at a time it makes one read(2) per frame (ws.ReadEach).
func (f *frameReader) run(c net.Conn, fn func(op ws.Opcode, payload []byte) error) error {
	f.fn = fn
	defer func() { f.fn = nil }()
	return ws.ReadEach(c, f.space, f.got, nil)
}

// space returns where the next read goes, making room at the end of the buffer first.
func (f *frameReader) space() []byte {
	if f.end == len(f.buf) {
		if f.start > 0 {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		} else {
			f.buf = append(f.buf, make([]byte, len(f.buf))...) // a frame bigger than the buffer
		}
	}
	return f.buf[f.end:]
}

// got decodes every whole frame among what was read, the n new bytes included.
func (f *frameReader) got(n int) error {
	f.end += n
	for {
		fin, op, payload, size, err := decodeFrame(f.buf[f.start:f.end])
		if err != nil {
			return err
		}
		if size == 0 { // the rest of the frame is still to come
			if f.start == f.end {
				f.start, f.end = 0, 0
			}
			return nil
		}
		f.start += size
		if op >= ws.OpClose || (fin && op != ws.OpContinuation && !f.inFrag) {
			if err := f.fn(op, payload); err != nil {
				return err
			}
			continue
		}
		// A fragment of a data message.
		if op != ws.OpContinuation {
			f.fragOp, f.inFrag, f.frag = op, true, nil
		}
		f.frag = append(f.frag, payload...)
		if fin {
			p := f.frag
			f.frag, f.inFrag = nil, false
			if err := f.fn(f.fragOp, p); err != nil {
				return err
			}
		}
	}
}

// decodeFrame decodes the frame at the start of b. size is the frame's length in b, or 0 if b
// holds only part of it.
func decodeFrame(b []byte) (fin bool, op ws.Opcode, payload []byte, size int, err error) {
	if len(b) < 2 {
		return false, 0, nil, 0, nil
	}
	fin, op = b[0]&0x80 != 0, ws.Opcode(b[0]&0x0f)
	if b[1]&0x80 != 0 {
		return false, 0, nil, 0, errors.New("masked frame from the server")
	}
	hlen, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if len(b) < hlen {
		return false, 0, nil, 0, nil
	}
	switch hlen {
	case 4:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 10:
		n = binary.BigEndian.Uint64(b[2:])
	}
	if n > maxFrame {
		return false, 0, nil, 0, fmt.Errorf("frame of %d bytes is too large", n)
	}
	if uint64(len(b)-hlen) < n {
		return false, 0, nil, 0, nil
	}
	return fin, op, b[hlen : hlen+int(n)], hlen + int(n), nil
}

// Prefixes of the server frames a subscriber tells apart without decoding JSON. The server
// encodes every frame with encoding/json from a struct whose first field is "type".
var (
	prefixMessage    = []byte(`{"type":"message"`)
	prefixSubscribed = []byte(`{"type":"subscribed"`)
	prefixError      = []byte(`{"type":"error"`)
	keySeq           = []byte(`"seq":`)
	keyBody          = []byte(`"body":"`)
)

// parseMessage extracts the seq and the send time (the unix nanoseconds that the load generator
// writes at the start of every body) from a message object, without decoding it. sent is 0 when
// the body does not start with digits (someone else's message).
func parseMessage(p []byte) (seq, sent int64, ok bool) {
	i := bytes.Index(p, keySeq)
	if i < 0 {
		return 0, 0, false
	}
	seq, n := parseDigits(p[i+len(keySeq):])
	if n == 0 {
		return 0, 0, false
	}
	if j := bytes.Index(p, keyBody); j >= 0 {
		sent, _ = parseDigits(p[j+len(keyBody):])
	}
	return seq, sent, true
}

// parseDigits parses the leading decimal digits of p.
func parseDigits(p []byte) (v int64, n int) {
	for n < len(p) && n < 19 && p[n] >= '0' && p[n] <= '9' {
		v = v*10 + int64(p[n]-'0')
		n++
	}
	return v, n
}

// closeCode returns the code of a close frame payload (CloseNoStatus when there is none).
func closeCode(p []byte) int {
	if len(p) < 2 {
		return ws.CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(p))
}
