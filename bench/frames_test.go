package bench

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"natter/internal/loopback"
	"natter/ws"
)

// fragment is one unmasked frame of a fragmented message (fin set only on the last).
func fragment(op ws.Opcode, fin bool, payload string) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	if len(payload) > 125 {
		panic("fragment: payload too long for this helper")
	}
	return append([]byte{b0, byte(len(payload))}, payload...)
}

// frameStream is a server's stream with every header length, a frame bigger than the read
// buffer, a fragmented message with a ping between its fragments, and what it should decode to.
func frameStream() (stream []byte, want []string) {
	big := strings.Repeat("b", 70000) // 64-bit length, bigger than frameBufSize
	mid := strings.Repeat("m", 300)   // 16-bit length
	var s []byte
	s = ws.AppendFrame(s, ws.OpText, []byte(`{"type":"subscribed"}`))
	s = ws.AppendFrame(s, ws.OpPing, []byte("p1"))
	s = ws.AppendFrame(s, ws.OpText, []byte(mid))
	s = ws.AppendFrame(s, ws.OpText, nil)
	s = ws.AppendFrame(s, ws.OpText, []byte(big))
	s = append(s, fragment(ws.OpText, false, "frag")...)
	s = ws.AppendFrame(s, ws.OpPing, []byte("p2"))
	s = append(s, fragment(ws.OpContinuation, false, "men")...)
	s = append(s, fragment(ws.OpContinuation, true, "ted")...)
	s = ws.AppendFrame(s, ws.OpClose, []byte{0x03, 0xe8})
	want = []string{
		fmt.Sprint(ws.OpText, ` {"type":"subscribed"}`),
		fmt.Sprint(ws.OpPing, " p1"),
		fmt.Sprint(ws.OpText, " ", mid),
		fmt.Sprint(ws.OpText, " "),
		fmt.Sprint(ws.OpText, " ", big),
		fmt.Sprint(ws.OpPing, " p2"),
		fmt.Sprint(ws.OpText, " fragmented"),
		fmt.Sprint(ws.OpClose, " \x03\xe8"),
	}
	return s, want
}

// TestFrameReaderSplitAnywhere decodes the same stream arriving in reads of every size.
func TestFrameReaderSplitAnywhere(t *testing.T) {
	stream, want := frameStream()
	for _, chunk := range []int{1, 2, 3, 7, 125, 4096, len(stream)} {
		f := newFrameReader()
		var got []string
		f.fn = func(op ws.Opcode, p []byte) error {
			got = append(got, fmt.Sprint(op, " ", string(p)))
			return nil
		}
		for rest := stream; len(rest) > 0; {
			n := copy(f.space()[:min(chunk, len(f.space()))], rest)
			rest = rest[n:]
			if err := f.got(n); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: decoded %d frames, want %d", chunk, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d: frame %d is %.40q, want %.40q", chunk, i, got[i], want[i])
			}
		}
		if f.start != 0 || f.end != 0 {
			t.Fatalf("chunk %d: %d bytes left undecoded", chunk, f.end-f.start)
		}
	}
}

// TestFrameReaderOverASocket reads the stream from a loopback connection, then sees the close.
func TestFrameReaderOverASocket(t *testing.T) {
	stream, want := frameStream()
	w, r := loopback.Pair(t)
	go func() {
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 999)
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
	}()
	var got []string
	err := newFrameReader().run(r, func(op ws.Opcode, p []byte) error {
		got = append(got, fmt.Sprint(op, " ", string(p)))
		return nil
	})
	if err != io.EOF {
		t.Fatalf("run = %v, want io.EOF", err)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("decoded %d frames that differ from the %d sent", len(got), len(want))
	}
}

func TestFrameReaderRefusesBadFrames(t *testing.T) {
	masked := ws.AppendMaskedFrame(nil, ws.OpText, []byte("hi"), [4]byte{1, 2, 3, 4})
	huge := []byte{0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for name, b := range map[string][]byte{"masked": masked, "huge": huge} {
		f := newFrameReader()
		f.fn = func(ws.Opcode, []byte) error { t.Fatalf("%s: decoded a frame", name); return nil }
		n := copy(f.space(), b)
		if err := f.got(n); err == nil {
			t.Fatalf("%s frame: no error", name)
		}
	}
	if _, _, _, size, err := decodeFrame(bytes.Repeat([]byte{0x81}, 1)); size != 0 || err != nil {
		t.Fatalf("one byte decodes to size %d, %v", size, err)
	}
}
