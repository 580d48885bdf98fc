package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"natter/ws"
)

// FuzzPushReader feeds the same client bytes to a ws.Reader over a plain io.Reader (the
// reference) and to wsReadState, the busy connections' reader, in the arbitrary pieces a socket
// may deliver them, with waits for more between some of them. Both must yield the same messages
// and the same errors, in the same order; wsReadState's buffer must stay within what the frame
// limit allows, and it must hold no buffer once it waits with nothing half-read.
func FuzzPushReader(f *testing.F) {
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	frame := func(op ws.Opcode, p []byte) []byte { return ws.AppendMaskedFrame(nil, op, p, key) }
	fragment := func(op ws.Opcode, p []byte) []byte {
		b := frame(op, p)
		b[0] &^= 0x80
		return b
	}
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	send := []byte(`{"type":"send","room":"lobby","body":"hi","client_id":"c-1"}`)
	for _, data := range [][]byte{
		frame(ws.OpText, send),
		join(frame(ws.OpText, send), frame(ws.OpText, send), frame(ws.OpPing, []byte("p"))),
		join(fragment(ws.OpText, []byte("frag")), frame(ws.OpPing, []byte("mid")), fragment(ws.OpContinuation, []byte("men")), frame(ws.OpContinuation, []byte("ted"))),
		frame(ws.OpText, bytes.Repeat([]byte("x"), fuzzFrameLimit)),   // at the limit
		frame(ws.OpText, bytes.Repeat([]byte("x"), fuzzFrameLimit+1)), // over it
		join(fragment(ws.OpText, bytes.Repeat([]byte("a"), 600)), frame(ws.OpContinuation, bytes.Repeat([]byte("b"), 600))),
		frame(ws.OpText, []byte("\xff\xfe")),
		join(frame(ws.OpText, []byte("\xff")), frame(ws.OpText, send)),
		frame(ws.OpPing, bytes.Repeat([]byte("c"), 126)),
		frame(ws.OpClose, ws.ClosePayload(ws.CloseNormal, "bye")),
		frame(ws.OpBinary, []byte{1, 2, 3}),
		ws.AppendFrame(nil, ws.OpText, []byte("unmasked")),
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, // 2^63-1 announced
		{0x81, 0xfe, 0x00},
	} {
		f.Add(data, []byte{})
		f.Add(data, []byte{0, 0x80, 1, 2, 0x83, 5, 8, 0x8d, 21, 34})
		f.Add(data, bytes.Repeat([]byte{0x80}, 64)) // a byte at a time, waiting after each
	}
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		want := referenceReads(data)
		got := pushReads(t, data, splits)
		if len(got) != len(want) {
			t.Fatalf("wsReadState yielded %d results, the reference %d:\n got %v\nwant %v", len(got), len(want), got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("result %d: wsReadState %v, the reference %v", i, got[i], want[i])
			}
		}
	})
}

// fuzzFrameLimit is the fuzzed readers' message limit: small, so that inputs reach it.
const fuzzFrameLimit = 1000

// readResult is one thing a reader returned: a message or control frame, or an error.
type readResult struct {
	op      ws.Opcode
	payload string
	err     string
}

func (r readResult) String() string {
	if r.err != "" {
		return "error " + r.err
	}
	return fmt.Sprintf("%v %q", r.op, r.payload)
}

func errClass(err error) string {
	var ce *ws.CloseError
	switch {
	case errors.Is(err, ws.ErrInvalidText):
		return "invalid text"
	case errors.Is(err, ws.ErrTooLarge):
		return "too large"
	case errors.Is(err, ws.ErrProtocol):
		return "protocol"
	case errors.As(err, &ce):
		return fmt.Sprintf("close %d %q", ce.Code, ce.Reason)
	}
	return "other: " + err.Error()
}

// referenceReads reads data with ws.Reader the simple way, stopping where the data runs out or
// at an error that ends a connection (an invalid text message does not: handleRead answers it
// and reads on).
func referenceReads(data []byte) []readResult {
	rd := ws.NewReader(bytes.NewReader(data), true, fuzzFrameLimit)
	var out []readResult
	for {
		op, p, err := rd.ReadMessage()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out
		}
		if err != nil {
			out = append(out, readResult{err: errClass(err)})
			if errors.Is(err, ws.ErrInvalidText) {
				continue
			}
			return out
		}
		out = append(out, readResult{op: op, payload: string(p)})
	}
}

// pushReads drives wsReadState as ws.ReadEach would: each byte of splits is one arrival of
// 1 to 128 bytes (the low 7 bits), followed by a wait for more if its high bit is set; what
// splits does not cover arrives as fast as the buffer takes it.
func pushReads(t *testing.T, data, splits []byte) []readResult {
	var out []readResult
	r := &wsReadState{limit: fuzzFrameLimit, handle: func(op ws.Opcode, p []byte, err error) error {
		if err != nil {
			out = append(out, readResult{err: errClass(err)})
			if errors.Is(err, ws.ErrInvalidText) {
				return nil
			}
			return err
		}
		out = append(out, readResult{op: op, payload: string(p)})
		return nil
	}}
	defer r.release()
	maxBuf := max(feedBufSize, 2*(fuzzFrameLimit+ws.MaxFrameHeader))
	for i := 0; len(data) > 0; i++ {
		space := r.space()
		n := min(len(data), len(space))
		var waitAfter bool
		if i < len(splits) {
			n = min(n, int(splits[i]&0x7f)+1)
			waitAfter = splits[i]&0x80 != 0
		}
		copy(space, data[:n])
		data = data[n:]
		if err := r.got(n); err != nil {
			return out
		}
		if l := len(r.f.buf); l > maxBuf {
			t.Fatalf("read buffer grew to %d bytes with a limit of %d", l, fuzzFrameLimit)
		}
		if waitAfter {
			r.wait()
			if r.f != nil && r.f.n == 0 && !r.f.rd.InMessage() {
				t.Fatal("waiting with nothing half-read, the reader kept its buffer")
			}
		}
	}
	return out
}
