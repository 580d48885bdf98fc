package natter

import (
	"strconv"
	"unicode/utf8"
)

// TimeFormat is how natter writes times: RFC 3339 in UTC with all nine digits of nanoseconds, so
// that every timestamp has the same width (encoding/json's RFC3339Nano drops trailing zeros).
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON encodes the message by hand: it is the hottest encoding in natter (once per
// message, shared by every subscriber), and it writes ts with a fixed nine-digit fraction.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 128+len(m.Body))), nil
}

// AppendJSON appends the message's JSON object to dst.
func (m Message) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"room":`...)
	dst = appendJSONString(dst, m.Room)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, m.ID)
	if m.ClientID != "" {
		dst = append(dst, `,"client_id":`...)
		dst = appendJSONString(dst, m.ClientID)
	}
	dst = append(dst, `,"author":`...)
	dst = appendJSONString(dst, m.Author)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, m.Body)
	dst = append(dst, `,"ts":"`...)
	dst = m.TS.UTC().AppendFormat(dst, TimeFormat)
	if m.Deleted {
		dst = append(dst, `","deleted":true`...)
		if m.ReplyTo != 0 {
			dst = append(dst, `,"reply_to":`...)
			dst = strconv.AppendInt(dst, m.ReplyTo, 10)
		}
		if m.Kind != "" {
			dst = append(dst, `,"kind":`...)
			dst = appendJSONString(dst, m.Kind)
			dst = append(dst, `,"target":`...)
			dst = strconv.AppendInt(dst, m.Target, 10)
		}
		return append(dst, '}')
	}
	if m.ReplyTo != 0 {
		dst = append(dst, `","reply_to":`...)
		dst = strconv.AppendInt(dst, m.ReplyTo, 10)
		dst = append(dst, '}')
		return dst
	}
	if m.Kind != "" {
		dst = append(dst, `","kind":`...)
		dst = appendJSONString(dst, m.Kind)
		dst = append(dst, `,"target":`...)
		dst = strconv.AppendInt(dst, m.Target, 10)
		return append(dst, '}')
	}
	return append(dst, `"}`...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string exactly as encoding/json writes it (see
// appendJSONString), for hand-written encoders of hot frames.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONString(dst, s) }

// appendJSONString appends s as a JSON string exactly as encoding/json does: quotes,
// backslashes and control characters escaped, <, > and & as \u003c, \u003e and \u0026 (so the
// JSON is safe to embed in HTML), U+2028 and U+2029 (which end lines in JavaScript) escaped, and
// invalid UTF-8 written as U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
