package sqlite

import (
	"path/filepath"
	"testing"

	"natter"
)

// TestFindByClientIDAcrossSweeps looks keys up wherever the committer keeps them: in the batch
// being committed, in memory, in client_keys and after reopening. Every key has the same hash, so
// only the comparison of full keys tells them apart.
func TestFindByClientIDAcrossSweeps(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	cfg := Config{Path: path, keyOf: func(string, string, string) int64 { return 42 }, keyBuckets: 4, keyBucketEvery: 4}
	s := mustOpen(t, cfg)
	_, err := s.CreateRoom(ctx, natter.Room{Name: "ops"})
	must(t, err)
	rooms := []string{natter.DefaultRoom, "ops"}

	find := func(s *Store, req natter.AppendRequest) (natter.Message, bool) {
		t.Helper()
		req.Body = "ignored"
		m, found, err := s.FindByClientID(ctx, req)
		must(t, err)
		return m, found
	}
	const n = 70 // several sweeps of 16, and Close in the middle of one
	reqs := make([]natter.AppendRequest, n)
	sent := make([]natter.Message, n)
	for i := range n {
		reqs[i] = keyedReq(rooms, i)
	}
	for i := range n {
		done := make(chan struct{})
		err := s.AppendMessageAsync(ctx, reqs[i], func(m natter.Message, created bool, err error) {
			if err != nil || !created {
				t.Errorf("request %d: created %v, %v", i, created, err)
			}
			sent[i] = m
			close(done)
		})
		must(t, err)
		// Queued behind the append, so it finds it; the next key is not queued yet.
		m, found := find(s, reqs[i])
		<-done
		if !found || m != sent[i] {
			t.Fatalf("lookup of request %d right after queuing it = %+v, %v; want %+v", i, m, found, sent[i])
		}
		if i+1 < n {
			if m, found := find(s, reqs[i+1]); found {
				t.Fatalf("lookup of request %d before it was sent found %+v", i+1, m)
			}
		}
		if i%10 == 9 {
			for j := range i + 1 {
				if m, found := find(s, reqs[j]); !found || m != sent[j] {
					t.Fatalf("lookup of request %d after %d appends = %+v, %v; want %+v", j, i+1, m, found, sent[j])
				}
			}
		}
	}
	must(t, s.Close())

	s = mustOpen(t, cfg)
	for i, req := range reqs {
		if m, found := find(s, req); !found || m != sent[i] {
			t.Fatalf("after reopening, lookup of request %d = %+v, %v; want %+v", i, m, found, sent[i])
		}
	}
	// Lookups stored nothing.
	for _, r := range rooms {
		got, err := s.MessagesAfter(ctx, r, 0, 1000)
		must(t, err)
		if len(got) != n/len(rooms) {
			t.Fatalf("%s holds %d messages, want %d", r, len(got), n/len(rooms))
		}
	}
}
