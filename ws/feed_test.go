package ws_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"testing"

	"natter/ws"
)

// clientFrame is a masked frame (key 1 2 3 4); fin false makes a fragment.
func clientFrame(op ws.Opcode, fin bool, payload []byte) []byte {
	if fin {
		return ws.AppendMaskedFrame(nil, op, payload, [4]byte{1, 2, 3, 4})
	}
	f := ws.AppendMaskedFrame(nil, op, payload, [4]byte{1, 2, 3, 4})
	f[0] &^= 0x80
	return f
}

// TestFrameLen: FrameLen finds each frame's end in a stream of every header size, and says 0
// until a header is whole.
func TestFrameLen(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 1000, 0xffff, 0x10000} {
		f := clientFrame(ws.OpText, true, bytes.Repeat([]byte("a"), n))
		if got := ws.FrameLen(f); got != int64(len(f)) {
			t.Fatalf("payload %d: FrameLen %d, want %d", n, got, len(f))
		}
		hlen := len(f) - n
		for cut := range hlen {
			if got := ws.FrameLen(f[:cut]); got != 0 {
				t.Fatalf("payload %d: FrameLen of %d header bytes = %d, want 0", n, cut, got)
			}
		}
		if got := ws.FrameLen(f[:hlen]); got != int64(len(f)) {
			t.Fatalf("payload %d: FrameLen of the header alone = %d, want %d", n, got, len(f))
		}
	}
	// Unmasked (server) frames too.
	f := ws.AppendFrame(nil, ws.OpText, make([]byte, 300))
	if got := ws.FrameLen(f); got != int64(len(f)) {
		t.Fatalf("unmasked: FrameLen %d, want %d", got, len(f))
	}
	// Lengths an int64 can't hold with the header saturate (a sum would overflow to < 0).
	for _, u := range []uint64{1<<63 | 5, 1<<63 - 1, 1<<63 - 10, 1<<64 - 1} {
		huge := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
		binary.BigEndian.PutUint64(huge[2:], u)
		if got := ws.FrameLen(huge); got != math.MaxInt64 {
			t.Fatalf("length %#x: FrameLen %d, want math.MaxInt64", u, got)
		}
	}
}

// TestReaderFedWholeFrames: a Reader fed whole frames a few at a time decodes what it decodes
// from the stream at once; io.EOF between feeds keeps a fragmented message, and InMessage and
// Buffered say so.
func TestReaderFedWholeFrames(t *testing.T) {
	var stream []byte
	var ends []int
	add := func(f []byte) {
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	add(clientFrame(ws.OpText, true, []byte("one")))
	add(clientFrame(ws.OpText, false, []byte("frag")))
	add(clientFrame(ws.OpPing, true, []byte("p")))
	add(clientFrame(ws.OpContinuation, false, []byte("men")))
	add(clientFrame(ws.OpContinuation, true, []byte("ted")))
	add(clientFrame(ws.OpBinary, true, bytes.Repeat([]byte("b"), 500)))
	add(clientFrame(ws.OpText, true, nil))

	decode := func(rd *ws.Reader) (out []string) {
		for {
			op, p, err := rd.ReadMessage()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%v %q", op, p))
		}
	}
	want := decode(ws.NewReader(bytes.NewReader(stream), true, 0))
	if len(want) != 5 {
		t.Fatalf("decoded %d messages from the whole stream: %q", len(want), want)
	}
	for step := 1; step <= len(ends); step++ {
		var src bytes.Reader
		rd := ws.NewReader(&src, true, 0)
		var got []string
		from := 0
		for i := step - 1; ; i += step {
			to := ends[min(i, len(ends)-1)]
			src.Reset(stream[from:to])
			got = append(got, decode(rd)...)
			if rd.Buffered() != 0 {
				t.Fatalf("step %d: %d bytes buffered after a feed of whole frames", step, rd.Buffered())
			}
			if midMessage := to > ends[0] && to < ends[4]; rd.InMessage() != midMessage {
				t.Fatalf("step %d, fed to %d: InMessage %v", step, to, rd.InMessage())
			}
			from = to
			if to == len(stream) {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d: decoded %q, want %q", step, got, want)
		}
	}

	// Reset forgets a message in progress.
	var src bytes.Reader
	rd := ws.NewReader(&src, true, 0)
	src.Reset(stream[ends[0]:ends[1]])
	decode(rd)
	if !rd.InMessage() {
		t.Fatal("InMessage false after a first fragment")
	}
	rd.Reset(bytes.NewReader(clientFrame(ws.OpText, true, []byte("fresh"))))
	if rd.InMessage() {
		t.Fatal("InMessage true after Reset")
	}
	if got := decode(rd); len(got) != 1 || got[0] != fmt.Sprintf("%v %q", ws.OpText, "fresh") {
		t.Fatalf("after Reset: %q", got)
	}
}
