package server

import "unicode/utf8"

// decodeClientFrame decodes a WebSocket client frame: the usual shape without reflection
// (decodeClientFrameFast), anything else, and every error, as unmarshalStrict does.
func decodeClientFrame(data []byte, f *clientFrame) error {
	if utf8.Valid(data) && decodeClientFrameFast(data, f) {
		return nil
	}
	*f = clientFrame{} // encoding/json starts over
	return unmarshalStrict(data, f)
}

// decodeClientFrameFast decodes a WebSocket client frame of the usual shape without
// encoding/json: one object whose keys are exactly "type", "room", "body", "client_id" or
// "after", whose strings have no escapes, and whose "after" is a number or null. It reports false
// for anything else (other or differently cased keys, escapes, other value types, bad syntax),
// and the caller then decodes with encoding/json, which gives the same result or the error. Every
// message sent over a WebSocket goes through here, and reflection-based decoding was about a
// tenth of the server's CPU in the ingest benchmark. data must be valid UTF-8.
// FuzzClientFrameDecode checks it against encoding/json.
func decodeClientFrameFast(data []byte, f *clientFrame) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if key == "after" {
			end, ok := plainNumberOrNull(data, i)
			if !ok {
				return false
			}
			f.After = append(f.After[:0:0], data[i:end]...)
			i = end
		} else {
			var dst *string
			switch key {
			case "type":
				dst = &f.Type
			case "room":
				dst = &f.Room
			case "body":
				dst = &f.Body
			case "client_id":
				dst = &f.ClientID
			default:
				return false
			}
			val, next, ok := plainString(data, i)
			if !ok {
				return false
			}
			*dst = val
			i = next
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at data[i] that has no escapes and no control characters.
func plainString(data []byte, i int) (s string, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return string(data[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// plainNumberOrNull returns the end of a JSON number or null at data[i]. Numbers are checked
// against JSON's grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func plainNumberOrNull(data []byte, i int) (end int, ok bool) {
	if len(data)-i >= 4 && string(data[i:i+4]) == "null" {
		return i + 4, true
	}
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	digits := func() bool {
		start := j
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		return j > start
	}
	switch {
	case j < len(data) && data[j] == '0':
		j++
	case !digits():
		return 0, false
	}
	if j < len(data) && data[j] == '.' {
		j++
		if !digits() {
			return 0, false
		}
	}
	if j < len(data) && (data[j] == 'e' || data[j] == 'E') {
		j++
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		if !digits() {
			return 0, false
		}
	}
	return j, true
}
