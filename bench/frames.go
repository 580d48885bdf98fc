package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"natter/ws"
)

// frameBufSize is a subscriber's read buffer: a message frame of the load generator is about 250
// bytes, so one read usually takes several. Larger frames (a presence list of many users) are
// read into a temporary slice.
const frameBufSize = 4096

// frameReader decodes server-to-client WebSocket frames with one fixed buffer and, unlike
// ws.Conn.ReadMessage, without allocating for each message: the returned payload aliases the
// buffer and is valid until the next call. Servers never mask; control frames are at most 125
// bytes; fragments are reassembled into an allocated slice (natter never fragments).
type frameReader struct {
	src        io.Reader
	buf        []byte
	start, end int
	frag       []byte
	fragOp     ws.Opcode
	inFrag     bool
}

func newFrameReader(src io.Reader) *frameReader {
	return &frameReader{src: src, buf: make([]byte, frameBufSize)}
}

// fill makes n (<= len(buf)) bytes available at buf[start:].
func (f *frameReader) fill(n int) error {
	if f.end-f.start >= n {
		return nil
	}
	if f.start+n > len(f.buf) {
		f.end = copy(f.buf, f.buf[f.start:f.end])
		f.start = 0
	}
	for f.end-f.start < n {
		m, err := f.src.Read(f.buf[f.end:])
		f.end += m
		if f.end-f.start >= n {
			return nil
		}
		if err != nil {
			if err == io.EOF && f.end > f.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// next returns the next message (text or binary, reassembled) or control frame.
func (f *frameReader) next() (ws.Opcode, []byte, error) {
	for {
		if err := f.fill(2); err != nil {
			return 0, nil, err
		}
		b0, b1 := f.buf[f.start], f.buf[f.start+1]
		fin, op := b0&0x80 != 0, ws.Opcode(b0&0x0f)
		if b1&0x80 != 0 {
			return 0, nil, errors.New("masked frame from the server")
		}
		hlen, n := 2, int64(b1&0x7f)
		switch n {
		case 126:
			hlen = 4
		case 127:
			hlen = 10
		}
		if err := f.fill(hlen); err != nil {
			return 0, nil, err
		}
		switch hlen {
		case 4:
			n = int64(binary.BigEndian.Uint16(f.buf[f.start+2:]))
		case 10:
			n = int64(binary.BigEndian.Uint64(f.buf[f.start+2:]))
		}
		if n < 0 || n > 64<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes is too large", n)
		}
		var payload []byte
		if int(n) <= len(f.buf)-hlen {
			if err := f.fill(hlen + int(n)); err != nil {
				return 0, nil, err
			}
			payload = f.buf[f.start+hlen : f.start+hlen+int(n)]
			f.start += hlen + int(n)
		} else {
			f.start += hlen
			payload = make([]byte, n)
			k := copy(payload, f.buf[f.start:f.end])
			f.start += k
			if _, err := io.ReadFull(f.src, payload[k:]); err != nil {
				return 0, nil, err
			}
		}
		if op >= ws.OpClose || (fin && op != ws.OpContinuation && !f.inFrag) {
			return op, payload, nil
		}
		// Fragmented data message.
		if op != ws.OpContinuation {
			f.fragOp, f.inFrag, f.frag = op, true, nil
		}
		f.frag = append(f.frag, payload...)
		if fin {
			p := f.frag
			f.frag, f.inFrag = nil, false
			return f.fragOp, p, nil
		}
	}
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
