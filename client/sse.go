package client

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// maxEventLine bounds one line of an event stream: a message event's data line is one message's
// JSON, at most some tens of KiB.
const maxEventLine = 4 << 20

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	ID    string // the stream's last event ID after this event (the id: field persists)
	Type  string // the event: field; "message" when absent
	Data  string // the data: lines joined with "\n"
	Retry string // the retry: field, if this event carried one
}

// eventReader parses a text/event-stream as the HTML standard specifies: lines end in CRLF, LF
// or CR; a line starting with ':' is a comment; an empty line dispatches the event; an event
// without data is dropped.
type eventReader struct {
	sc     *bufio.Scanner
	onLine func() // told about every line, comments included: the stream is alive
	lastID string
}

// newEventReader reads events from r; onLine, if not nil, is called for every line.
func newEventReader(r io.Reader, onLine func()) *eventReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	sc.Split(scanEventLines)
	return &eventReader{sc: sc, onLine: onLine}
}

// next returns the next event. At the end of the stream it returns io.EOF; an event not ended
// by an empty line is discarded, as the standard says.
func (r *eventReader) next() (sseEvent, error) {
	var (
		ev      sseEvent
		data    strings.Builder
		hasData bool
	)
	for r.sc.Scan() {
		if r.onLine != nil {
			r.onLine()
		}
		line := r.sc.Bytes()
		if len(line) == 0 {
			if !hasData {
				ev = sseEvent{}
				continue
			}
			ev.ID = r.lastID
			ev.Data = strings.TrimSuffix(data.String(), "\n")
			if ev.Type == "" {
				ev.Type = "message"
			}
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "data":
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "event":
			ev.Type = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			ev.Retry = string(value)
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

// scanEventLines is a bufio.SplitFunc for lines ended by CRLF, LF or a lone CR.
func scanEventLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil // a CR at the end: an LF may follow
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
