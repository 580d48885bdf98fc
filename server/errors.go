package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"natter"
)

// statusFor maps an error code to its HTTP status; it is the only place that does.
func statusFor(code string) int {
	switch code {
	case natter.EINVALID:
		return http.StatusBadRequest
	case natter.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case natter.EFORBIDDEN:
		return http.StatusForbidden
	case natter.ENOTFOUND:
		return http.StatusNotFound
	case natter.ECONFLICT:
		return http.StatusConflict
	case natter.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case natter.ERATELIMITED:
		return http.StatusTooManyRequests
	case natter.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers with the contract's error shape. Internal errors are logged here, once, with
// their cause; the client sees only "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := natter.ErrorCode(err)
	if code == natter.EINTERNAL {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var rl *retryError
	if isRetry := errors.As(err, &rl); isRetry || code == natter.ERATELIMITED {
		retry := time.Second
		if isRetry {
			retry = rl.retryAfter
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	writeJSON(w, statusFor(code), errorBody{Error: errorDetail{Code: code, Message: natter.ErrorMessage(err)}})
}

// writeJSON writes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeBody(w, status, append(body, '\n'))
}

// writeBody writes an encoded JSON answer (ending in a newline) as writeJSON does.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// decodeJSON reads a JSON request body of at most limit bytes into v. Oversize bodies are
// ETOOLARGE; anything that is not one JSON object of the right shape is EINVALID.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return natter.Errorf(natter.ETOOLARGE, "request body is larger than %d bytes", limit)
		}
		return natter.Errorf(natter.EINVALID, "request body could not be read: %v", err)
	}
	return unmarshalStrict(body, v)
}

// unmarshalStrict decodes one JSON object. Unlike json.Unmarshal alone it refuses invalid UTF-8,
// which encoding/json would silently turn into U+FFFD: a client sending broken text is told so.
func unmarshalStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return natter.Errorf(natter.EINVALID, "request is not valid UTF-8")
	}
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return natter.Errorf(natter.EINVALID, "request must be a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return natter.Errorf(natter.EINVALID, "request is not valid JSON: %v", err)
	}
	return nil
}

// retryError is a refusal for now (rate_limited, or unavailable at the connection limit) with
// the time after which a retry may succeed: HTTP answers carry it as Retry-After, WebSocket
// error frames as retry_after_ms.
type retryError struct {
	err        *natter.Error
	retryAfter time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }
