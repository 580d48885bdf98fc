package server

import (
	"net/http"
	"strconv"
	"time"

	"natter"
)

// searchBody is the answer to GET /api/rooms/{room}/search.
type searchBody struct {
	Room  string `json:"room"`
	Epoch string `json:"epoch"`
	natter.SearchResult
}

// handleSearch finds the messages of a room that match q, newest first, walking back from before
// (the end of the log without it) through at most natter.SearchScan entries; the answer's before
// says where to go on.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, err := natter.ParseSearch(v.Get("q"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := natter.DefaultSearchLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > natter.MaxSearchLimit {
			s.writeError(w, r, natter.Errorf(natter.EINVALID, "limit must be a whole number from 1 to %d, not %q", natter.MaxSearchLimit, l))
			return
		}
		limit = n
	}
	var before int64
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			s.writeError(w, r, natter.Errorf(natter.EINVALID, "before must be a seq (a whole number >= 1), not %q", b))
			return
		}
		before = n
	}
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.searches.allow(authFrom(r.Context()).user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if before == 0 || before > room.LastSeq+1 {
		before = room.LastSeq + 1
	}
	start := time.Now()
	res, err := natter.Search(r.Context(), s.store, natter.SearchRequest{Room: room.Name, Query: q, Before: before, Limit: limit})
	s.metrics.searches.observe(time.Since(start))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, searchBody{Room: room.Name, Epoch: room.Epoch, SearchResult: res})
}
