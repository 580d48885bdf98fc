// Package ws is a small RFC 6455 WebSocket implementation without extensions.
//
// It exists so that natter controls per-connection memory: a server connection costs one Reader
// (a fixed inline buffer, nothing allocated while idle) plus whatever the caller keeps, and frames
// are encoded once with AppendFrame and the same bytes written to every subscriber. The frame
// decoder is fuzzed (FuzzReader).
//
// Server side: call Upgrade, read with NewReader(conn, true, limit), write AppendFrame bytes to the
// returned net.Conn. Client side: Dial returns a Conn that masks its frames, answers pings and
// echoes close frames.
package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 section 5.2).
type Opcode byte

// Opcodes defined by RFC 6455. Opcodes 3-7 and 11-15 are reserved and rejected by Reader.
const (
	OpContinuation Opcode = 0
	OpText         Opcode = 1
	OpBinary       Opcode = 2
	OpClose        Opcode = 8
	OpPing         Opcode = 9
	OpPong         Opcode = 10
)

// String returns the opcode's name, for logs and test failures.
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%d)", byte(op))
}

// isControl reports whether op is a control opcode, which may not be fragmented and carries at most
// maxControlPayload bytes.
func (op Opcode) isControl() bool { return op&0x8 != 0 }

// Close codes (RFC 6455 section 7.4.1), plus CloseSlow, natter's code for a client that can't keep
// up (PROTOCOL.md). CloseNoStatus and CloseAbnormal are never sent on the wire: they describe a
// close frame without a code and a connection lost without a close frame.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005
	CloseAbnormal        = 1006
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
	CloseSlow            = 4008
	CloseSignedOut       = 4001 // natter: the connection's session ended (signed out, or the password changed)
)

// maxControlPayload is the largest payload of a control frame (RFC 6455 section 5.5).
const maxControlPayload = 125

// MaxFrameHeader is the longest frame header: 2 bytes, an 8-byte length and a 4-byte mask key. It
// lets callers size buffers for AppendFrame.
const MaxFrameHeader = 14

// ErrTooLarge is returned by ReadMessage when a message is longer than the reader's limit. It is
// returned as soon as a frame header announces the excess, before the payload is read; the peer
// should then be sent CloseTooBig.
var ErrTooLarge = errors.New("ws: message too large")

// ErrProtocol is the error every *ProtocolError matches with errors.Is: the peer broke RFC 6455.
var ErrProtocol = errors.New("ws: protocol error")

// ErrBadHandshake is wrapped by the errors of Upgrade and Dial when the opening handshake fails.
var ErrBadHandshake = errors.New("ws: bad handshake")

// ErrCloseSent is returned by Conn.WriteMessage after a close frame was sent: RFC 6455 forbids
// data frames after it.
var ErrCloseSent = errors.New("ws: close frame already sent")

// ProtocolError describes how a peer broke the protocol. Code is the close code to send before
// closing: CloseProtocolError for framing errors, CloseInvalidPayload for text that is not UTF-8.
// errors.Is(err, ErrProtocol) is true for every *ProtocolError.
type ProtocolError struct {
	Code int
	Msg  string
	// Text marks a complete text message whose payload is not valid UTF-8. The stream is still
	// in step (the whole message was read), so a lenient server may answer it and read on.
	Text bool
}

// Error implements the error interface.
func (e *ProtocolError) Error() string { return "ws: protocol error: " + e.Msg }

// Is makes errors.Is(err, ErrProtocol) match, and errors.Is(err, ErrInvalidText) for Text errors.
func (e *ProtocolError) Is(target error) bool {
	return target == ErrProtocol || (e.Text && target == ErrInvalidText)
}

// ErrInvalidText is matched by the error for a whole text message that is not valid UTF-8.
var ErrInvalidText = errors.New("ws: text message is not valid UTF-8")

// protocolError returns a *ProtocolError with code CloseProtocolError.
func protocolError(format string, args ...any) error {
	return &ProtocolError{Code: CloseProtocolError, Msg: fmt.Sprintf(format, args...)}
}

// CloseError is returned by ReadMessage when the peer sent a close frame. Code is CloseNoStatus
// when the frame carried no code.
type CloseError struct {
	Code   int
	Reason string
}

// Error implements the error interface.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("ws: closed by peer: %d", e.Code)
	}
	return fmt.Sprintf("ws: closed by peer: %d %s", e.Code, e.Reason)
}

// CloseCodeFor returns the close code to send after ReadMessage failed with err: CloseTooBig for
// ErrTooLarge, the Code of a *ProtocolError, and 0 for anything else (a network error, io.EOF, or
// a *CloseError, which is answered by echoing its code), where no close frame is owed.
func CloseCodeFor(err error) int {
	if errors.Is(err, ErrTooLarge) {
		return CloseTooBig
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

// validCloseCode reports whether a peer may send code in a close frame: the codes RFC 6455 and the
// IANA registry define for use on the wire (1000-1003, 1007-1014) and the 3000-4999 application
// range. 1005, 1006 and 1015 are reserved for reporting and must never be sent.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendFrame appends one final, unmasked frame (server to client) to dst and returns the extended
// slice. Servers encode a message once and write the same bytes to every subscriber.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = appendHeader(dst, 0x80|byte(op), false, len(payload))
	return append(dst, payload...)
}

// AppendMaskedFrame appends one final frame masked with key (client to server) to dst. Clients
// must use a fresh unpredictable key for every frame (RFC 6455 section 5.3).
func AppendMaskedFrame(dst []byte, op Opcode, payload []byte, key [4]byte) []byte {
	dst = appendHeader(dst, 0x80|byte(op), true, len(payload))
	dst = append(dst, key[:]...)
	n := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[n:], key)
	return dst
}

// appendHeader appends a frame header without the mask key, using the shortest length encoding as
// RFC 6455 section 5.2 requires.
func appendHeader(dst []byte, b0 byte, masked bool, n int) []byte {
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n <= 125:
		return append(dst, b0, m|byte(n))
	case n <= 0xffff:
		return append(dst, b0, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, m|127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// ClosePayload builds a close frame payload: the 2-byte code and reason, truncated at a UTF-8
// boundary so the payload fits a control frame's 125 bytes. For CloseNoStatus, which must not be
// sent, it returns an empty payload, which means the same thing on the wire.
func ClosePayload(code int, reason string) []byte {
	if code == CloseNoStatus || code == 0 {
		return []byte{}
	}
	const maxReason = maxControlPayload - 2
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return append(p, reason...)
}

// maskBytes XORs b with key, starting at key position 0. Eight bytes at a time, because servers
// unmask every byte they receive.
func maskBytes(b []byte, key [4]byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	// Multiples of 8 bytes keep the key phase at 0, so the tail starts at key[0].
	for i := range b {
		b[i] ^= key[i&3]
	}
}
