package natter

import (
	"context"
	"strings"
	"unicode/utf8"
)

// Search limits: a query's size, and how much of a log one search request reads.
const (
	MaxSearchLen       = 200    // characters of a query
	MaxSearchWords     = 10     // words of a query, from: included
	DefaultSearchLimit = 20     // matches one request returns by default
	MaxSearchLimit     = 100    // and at most
	SearchScan         = 10_000 // log entries one request reads at most, walking back
	searchChanges      = 10_000 // newest changes after the start of a continued search taken into account
	searchPage         = 1_000  // log entries read at a time, at most: the first read takes 100, each next 4 times more
)

// SearchQuery is a parsed search: every word must be in a message's text (case-insensitively, as
// a part of a word or more), and From, when set, must be its author.
type SearchQuery struct {
	Words []string // lower-case
	From  string
}

// ParseSearch parses what a user typed into a search box: words separated by spaces, and at most
// one "from:NAME". EINVALID for an empty query, a query over MaxSearchLen characters or with more
// than MaxSearchWords words, or two from:s.
func ParseSearch(q string) (SearchQuery, error) {
	var sq SearchQuery
	if !utf8.ValidString(q) {
		return sq, Errorf(EINVALID, "the search is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(q); n > MaxSearchLen {
		return sq, Errorf(EINVALID, "a search is at most %d characters, not %d", MaxSearchLen, n)
	}
	fields := strings.Fields(q)
	if len(fields) > MaxSearchWords {
		return sq, Errorf(EINVALID, "a search is at most %d words, not %d", MaxSearchWords, len(fields))
	}
	for _, f := range fields {
		if name, ok := strings.CutPrefix(f, "from:"); ok && name != "" {
			if sq.From != "" {
				return sq, Errorf(EINVALID, "a search takes one from:, not two")
			}
			sq.From = strings.TrimPrefix(name, "@")
			continue
		}
		sq.Words = append(sq.Words, strings.ToLower(f))
	}
	if len(sq.Words) == 0 && sq.From == "" {
		return sq, Errorf(EINVALID, "give something to search for (q)")
	}
	return sq, nil
}

// Matches reports whether a message by author whose text is now text matches the query.
func (q SearchQuery) Matches(author, text string) bool {
	if q.From != "" && !strings.EqualFold(q.From, author) {
		return false
	}
	if len(q.Words) == 0 {
		return true
	}
	lower := strings.ToLower(text)
	for _, w := range q.Words {
		if !strings.Contains(lower, w) {
			return false
		}
	}
	return true
}

// SearchResult is one page of a search, walking back through a room's log.
type SearchResult struct {
	// Messages are the matches, newest first, as they were stored; a deleted message is never
	// one, and an edited one matches by its latest text.
	Messages []Message `json:"messages"`
	// Changes holds the latest edit of each match that was edited, to show it as the log does.
	Changes []Message `json:"changes"`
	// Scanned is how many log entries the search read.
	Scanned int `json:"scanned"`
	// Before is where to go on (the next request's before) when the search stopped before the
	// start of the log, at its limit of matches or of entries read; 0 when it reached the start.
	Before int64 `json:"before,omitempty"`
}

// SearchRequest is one page of a search.
type SearchRequest struct {
	Room   string
	Query  SearchQuery
	Before int64 // every message before this seq: the room's last seq + 1 for the whole log
	Limit  int   // matches at most: DefaultSearchLimit when 0 or over MaxSearchLimit
	Scan   int   // log entries read at most: SearchScan when 0
}

// Search walks back through a room's log from req.Before, up to req.Limit matches of req.Query
// and at most req.Scan entries, and returns what it found. Edits and deletions after Before (the
// newest searchChanges of them) are read first, so that a continued search sees the messages as
// they are now too. Errors: EINVALID (Before < 1) and the store's.
func Search(ctx context.Context, store MessageStore, req SearchRequest) (SearchResult, error) {
	room, q, before, limit, scan := req.Room, req.Query, req.Before, req.Limit, req.Scan
	if limit <= 0 || limit > MaxSearchLimit {
		limit = DefaultSearchLimit
	}
	if scan <= 0 {
		scan = SearchScan
	}
	res := SearchResult{Messages: []Message{}, Changes: []Message{}}
	edits := map[int64]Message{} // target -> its latest edit
	deleted := map[int64]bool{}
	note := func(c Message) { // c is newer than any change noted before it
		switch c.Kind {
		case KindDelete:
			deleted[c.Target] = true
		case KindEdit:
			if _, ok := edits[c.Target]; !ok {
				edits[c.Target] = c
			}
		}
	}
	if before < 1 {
		return res, Errorf(EINVALID, "a search starts before seq 1 or later, not %d", before)
	}
	{
		newer, err := store.ChangesSince(ctx, room, before-1, searchChanges)
		if err != nil {
			return res, err
		}
		for i := len(newer) - 1; i >= 0; i-- {
			note(newer[i])
		}
	}
	at := before
	// A search that finds its matches among the newest messages reads few: small reads first.
	for size := 100; res.Scanned < scan; size = min(size*4, searchPage) {
		page, err := store.MessagesBefore(ctx, room, at, min(size, scan-res.Scanned))
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil // the start of the log
		}
		for i := len(page) - 1; i >= 0; i-- {
			m := page[i]
			res.Scanned++
			at = m.Seq
			if m.Kind != "" {
				note(m)
				continue
			}
			if deleted[m.Seq] || m.Deleted { // erased: its deletion may be older than the changes read
				continue
			}
			text := m.Body
			edit, edited := edits[m.Seq]
			if edited {
				text = edit.Body
			}
			if !q.Matches(m.Author, text) {
				continue
			}
			res.Messages = append(res.Messages, m)
			if edited {
				res.Changes = append(res.Changes, edit)
			}
			if len(res.Messages) == limit {
				if m.Seq > 1 {
					res.Before = m.Seq
				}
				return res, nil
			}
		}
		if at <= 1 {
			return res, nil
		}
	}
	if at > 1 {
		res.Before = at
	}
	return res, nil
}
