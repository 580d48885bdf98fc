package sqlite

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"natter"
)

// TestKeyFilter: every key added is reported present, even at twice the capacity, and at
// capacity few keys never added are.
func TestKeyFilter(t *testing.T) {
	const capacity = 100_000
	f := newKeyFilter(capacity)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]int64, 2*capacity)
	for i := range keys {
		keys[i] = rng.Int64() - rng.Int64()
		f.add(keys[i])
		if i == capacity-1 {
			fp := 0
			for range 100_000 {
				if f.mayContain(rng.Int64()) {
					fp++
				}
			}
			if fp > 2000 {
				t.Fatalf("%.1f %% false positives at capacity, want about 1 %%", float64(fp)/1000)
			}
		}
	}
	for i, k := range keys {
		if !f.mayContain(k) {
			t.Fatalf("key %d (%d) added but reported absent", i, k)
		}
	}
	if !f.full() {
		t.Fatal("a filter at twice its capacity does not ask to be replaced")
	}
}

// TestKeyFilterSparesLookupsAndMissesNothing: with keys moving from memory to client_keys all the
// time, a filter that starts tiny (so that bigger ones replace it while the test runs), and a
// reopen that refills it, every retry still finds its original, and the filter answers most
// lookups of new keys without reading client_keys.
func TestKeyFilterSparesLookupsAndMissesNothing(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	cfg := Config{Path: path, keyBuckets: 4, keyBucketEvery: 4, filterKeys: 64}
	rooms := []string{natter.DefaultRoom, "ops"}
	var reqs []natter.AppendRequest
	var sent []natter.Message
	appendSome := func(s *Store, n int) {
		for range n {
			req := keyedReq(rooms, len(reqs))
			m, created, err := s.AppendMessage(ctx, req)
			must(t, err)
			if !created {
				t.Fatalf("request %d: created = false", len(reqs))
			}
			reqs, sent = append(reqs, req), append(sent, m)
		}
	}
	waitReady := func(s *Store) {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
			if f := s.filter.Load(); f != nil && f.ready.Load() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the client_id filter never became ready")
			}
		}
	}

	s := mustOpen(t, cfg)
	_, err := s.CreateRoom(ctx, natter.Room{Name: "ops"})
	must(t, err)
	waitReady(s)
	for range 6 {
		appendSome(s, 100)
		wantOriginals(t, s, reqs, sent)
	}
	must(t, s.Close())
	if s.probesSkipped < 300 {
		t.Fatalf("the filter answered %d of 600 lookups of new keys; want most", s.probesSkipped)
	}
	if f := s.filling.Load(); f.capacity <= 64 {
		t.Fatalf("filter capacity %d after 600 keys: it was never replaced by a bigger one", f.capacity)
	}

	// Reopened, the filter is refilled from client_keys in the background.
	s = mustOpen(t, cfg)
	waitReady(s)
	wantOriginals(t, s, reqs, sent)
	appendSome(s, 100)
	wantOriginals(t, s, reqs, sent)
	must(t, s.Close())
	if s.probesSkipped < 50 {
		t.Fatalf("after reopening, the filter answered %d of 100 lookups of new keys", s.probesSkipped)
	}
}

// TestKeyFilterSizeIsCapped: a huge store gets a filter of at most 64 MiB, which is then never
// replaced by a bigger one.
func TestKeyFilterSizeIsCapped(t *testing.T) {
	f := newKeyFilter(1 << 40)
	if bits := uint64(len(f.bits)) * 64; bits != maxFilterBits || f.mask+1 != maxFilterBits {
		t.Fatalf("filter of %d bits for 2^40 keys, want the cap %d", bits, maxFilterBits)
	}
	if f := newKeyFilter(minFilterKeys); len(f.bits)*64 < minFilterKeys*filterBitsPerKey {
		t.Fatalf("filter of %d bits for %d keys, want at least %d per key", len(f.bits)*64, minFilterKeys, filterBitsPerKey)
	}
}
