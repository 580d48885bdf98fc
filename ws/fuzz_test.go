package ws_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"unicode/utf8"

	"natter/ws"
)

// fuzzLimit is the message limit of the fuzzed reader: above the inline buffer, so that long
// payloads take the direct-read path, and small enough that the fuzzer reaches it.
const fuzzLimit = 2048

// FuzzReader feeds arbitrary bytes to a server-side Reader. It must never panic, never hand out
// more than fuzzLimit bytes or allocate much beyond that per message, return only valid messages,
// and every message it accepts must decode to itself after re-encoding.
func FuzzReader(f *testing.F) {
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	fragment := func(op ws.Opcode, p []byte) []byte {
		b := ws.AppendMaskedFrame(nil, op, p, key)
		b[0] &^= 0x80
		return b
	}
	f.Add([]byte{})
	f.Add(ws.AppendMaskedFrame(nil, ws.OpText, []byte("hello"), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpBinary, make([]byte, 200), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpBinary, make([]byte, 1500), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpBinary, make([]byte, fuzzLimit+1), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpPing, []byte("ping"), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpPong, nil, key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseNormal, "bye"), key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpClose, nil, key))
	f.Add(ws.AppendMaskedFrame(nil, ws.OpText, []byte("\xff"), key))
	f.Add(join(
		fragment(ws.OpText, []byte("frag")),
		ws.AppendMaskedFrame(nil, ws.OpPing, []byte("mid"), key),
		fragment(ws.OpContinuation, []byte("men")),
		ws.AppendMaskedFrame(nil, ws.OpContinuation, []byte("ted"), key),
		ws.AppendMaskedFrame(nil, ws.OpText, []byte("next"), key),
	))
	f.Add(join(fragment(ws.OpBinary, make([]byte, 1000)), ws.AppendMaskedFrame(nil, ws.OpContinuation, make([]byte, 1049), key)))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 1, 2, 3, 4})       // 2047 announced, nothing sent
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // huge announced
	f.Add(ws.AppendFrame(nil, ws.OpText, []byte("unmasked")))

	f.Fuzz(func(t *testing.T, data []byte) {
		rd := ws.NewReader(bytes.NewReader(data), true, fuzzLimit)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		results := 0
		for {
			op, p, err := rd.ReadMessage()
			results++
			var ce *ws.CloseError
			if errors.As(err, &ce) {
				checkRoundTrip(t, ws.OpClose, ws.ClosePayload(ce.Code, ce.Reason), ce)
				continue
			}
			if err != nil {
				if !errors.Is(err, ws.ErrProtocol) && !errors.Is(err, ws.ErrTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				break
			}
			switch op {
			case ws.OpText:
				if !utf8.Valid(p) {
					t.Fatalf("invalid UTF-8 text accepted: %q", p)
				}
			case ws.OpBinary:
			case ws.OpPing, ws.OpPong:
				if len(p) > 125 {
					t.Fatalf("%v of %d bytes accepted", op, len(p))
				}
			default:
				t.Fatalf("ReadMessage returned opcode %v", op)
			}
			if len(p) > fuzzLimit || cap(p) > fuzzLimit {
				t.Fatalf("message of len %d cap %d exceeds the limit %d", len(p), cap(p), fuzzLimit)
			}
			checkRoundTrip(t, op, p, nil)
		}
		runtime.ReadMemStats(&after)
		// Per result: the message (at most the limit, plus what doubling discarded) and small
		// error values; the round-trip checks encode and decode each result twice more.
		budget := uint64(results)*(8*fuzzLimit+4096) + 64<<10
		if got := after.TotalAlloc - before.TotalAlloc; got > budget {
			t.Fatalf("allocated %d bytes for %d results from %d input bytes; budget %d", got, results, len(data), budget)
		}
	})
}

// checkRoundTrip encodes a message both ways (masked for a server reader, unmasked for a client
// reader) and checks that it decodes to the same opcode and payload, or the same close.
func checkRoundTrip(t *testing.T, op ws.Opcode, p []byte, wantClose *ws.CloseError) {
	t.Helper()
	encodings := []struct {
		server bool
		frame  []byte
	}{
		{true, ws.AppendMaskedFrame(nil, op, p, [4]byte{9, 8, 7, 6})},
		{false, ws.AppendFrame(nil, op, p)},
	}
	for _, enc := range encodings {
		gotOp, got, err := ws.NewReader(bytes.NewReader(enc.frame), enc.server, fuzzLimit).ReadMessage()
		if wantClose != nil {
			var ce *ws.CloseError
			if !errors.As(err, &ce) || *ce != *wantClose {
				t.Fatalf("close %+v re-decoded as %v", *wantClose, err)
			}
			continue
		}
		if err != nil || gotOp != op || !bytes.Equal(got, p) {
			t.Fatalf("%v %q re-decoded (server %v) as %v %q %v", op, p, enc.server, gotOp, got, err)
		}
	}
}

// loopReader returns data over and over, like a connection that never runs dry.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	// Small masked client frames, the shape of chat traffic: a JSON send of about 100 bytes.
	msg := []byte(`{"type":"send","room":"lobby","body":"hello, how is everyone doing today?","client_id":"c-0123456789abcdef"}`)
	var data []byte
	for i := range 64 {
		data = ws.AppendMaskedFrame(data, ws.OpText, msg, [4]byte{byte(i), 2, 3, 4})
	}
	rd := ws.NewReader(&loopReader{data: data}, true, 0)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := rd.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 200)
	buf := make([]byte, 0, len(msg)+ws.MaxFrameHeader)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = ws.AppendFrame(buf[:0], ws.OpText, msg)
	}
}

func BenchmarkAppendMaskedFrame(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 200)
	buf := make([]byte, 0, len(msg)+ws.MaxFrameHeader)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = ws.AppendMaskedFrame(buf[:0], ws.OpText, msg, [4]byte{1, 2, 3, 4})
	}
}
