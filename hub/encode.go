package hub

import (
	"encoding/json"
	"strconv"

	"natter"
	"natter/ws"
)

// Transport selects which encoding of a frame a subscriber receives.
type Transport uint8

// The transports that receive pushed frames. Long-poll answers are built from Frame.JSON.
const (
	WebSocket Transport = iota
	SSE
)

// Frame is one item for subscribers, encoded once per transport so that every subscriber of a room
// shares the same bytes. Seq is the message's seq, or 0 for frames outside the log (presence).
type Frame struct {
	Seq  int64
	Msg  natter.Message
	JSON []byte // the bare message object (messages only)
	WS   []byte // a complete WebSocket text frame
	SSE  []byte // a complete text/event-stream event
}

// Bytes returns the encoding for transport t.
func (f *Frame) Bytes(t Transport) []byte {
	if t == SSE {
		return f.SSE
	}
	return f.WS
}

// EncodeMessage encodes a committed message for every transport at once.
func EncodeMessage(m natter.Message) *Frame {
	return encodeMessageJSON(m, m.AppendJSON(make([]byte, 0, 160+len(m.Body))))
}

func encodeMessageJSON(m natter.Message, body []byte) *Frame {
	const wsPrefix, wsSuffix = `{"type":"message","message":`, `}`
	payload := make([]byte, 0, len(wsPrefix)+len(body)+len(wsSuffix))
	payload = append(payload, wsPrefix...)
	payload = append(payload, body...)
	payload = append(payload, wsSuffix...)

	sse := make([]byte, 0, len(body)+48)
	sse = append(sse, "id: "...)
	sse = strconv.AppendInt(sse, m.Seq, 10)
	sse = append(sse, "\nevent: message\ndata: "...)
	sse = append(sse, body...)
	sse = append(sse, "\n\n"...)

	return &Frame{
		Seq:  m.Seq,
		Msg:  m,
		JSON: body,
		WS:   ws.AppendFrame(make([]byte, 0, len(payload)+10), ws.OpText, payload),
		SSE:  sse,
	}
}

// EncodeEvent encodes a frame outside the log (presence, subscribed, errors): v is the WebSocket
// JSON object; on SSE it becomes an event named by its "type".
func EncodeEvent(typ string, v any) *Frame {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	sse := make([]byte, 0, len(body)+32)
	sse = append(sse, "event: "...)
	sse = append(sse, typ...)
	sse = append(sse, "\ndata: "...)
	sse = append(sse, body...)
	sse = append(sse, "\n\n"...)
	return &Frame{WS: ws.AppendFrame(nil, ws.OpText, body), SSE: sse}
}
