package server

import "time"

// PollAnswerCounts returns how many long-poll answers read the store and how many shared another
// answer's read.
func PollAnswerCounts(s *Server) (reads, joined int64) {
	return s.pollAnswers.reads.Load(), s.pollAnswers.joined.Load()
}

// AfterReads returns how many times the messages handler read the log after a cursor itself
// (not through a shared long-poll answer).
func AfterReads(s *Server) int64 { return s.afterReads.Load() }

// SetPushAfterTexts sets how many text frames a WebSocket connection sends before its reads
// switch to wsReadState (0: from the start); PushReaders counts the connections that switched.
func SetPushAfterTexts(s *Server, n int) { s.pushAfter.Store(int32(n)) }

func PushReaders(s *Server) int64 { return s.pushReaders.Load() }

// SetBusyGap sets how far apart a parked WebSocket's frames may come for its reader to keep a
// goroutine (0: it always parks).
func SetBusyGap(s *Server, d time.Duration) { s.busyGap.Store(int64(d)) }

// SetParking turns parking (readParked for WebSockets, a park.Waiter for SSE streams) on or off
// for connections made after.
func SetParking(s *Server, on bool) { s.noPark.Store(!on) }

// FeedsHeld returns how many read buffers (with their decoders) WebSocket connections hold now.
func FeedsHeld() int64 { return feedsHeld.Load() }

// SetPollReadHook makes every long-poll answer's store read run f first.
func SetPollReadHook(s *Server, f func()) { s.pollAnswers.hook = f }

// SetFrameHook makes f run on every WebSocket frame the server reads (where "read", on the
// connection's reader goroutine) and handles (where "handle", on its frame handler).
func SetFrameHook(s *Server, f func(where string, payload []byte)) { s.frameHook = f }

// SetPollWriteTimeout sets how long a long-poll answer may take to write (pollWriteTimeout).
func SetPollWriteTimeout(s *Server, d time.Duration) { s.pollWrite.Store(int64(d)) }

// OpenFileLimit is openFileLimit.
var OpenFileLimit = openFileLimit

// FileBudget is fileBudget.
var FileBudget = fileBudget

// TokenHash is how the server keys a session token in the store.
func TokenHash(token string) string { return tokenHash(token) }
