package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
	"natter/internal/redistest"
	"natter/storetest"
)

// openTest opens a Store on url and prefix, closed when t ends.
func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	url := redistest.URL(t)
	storetest.Run(t, func(t *testing.T) natter.Store {
		return openTest(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

// commitLog records what a node's OnCommit received.
type commitLog struct {
	mu   sync.Mutex
	msgs map[string][]natter.Message
}

func (l *commitLog) add(msgs []natter.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msgs == nil {
		l.msgs = make(map[string][]natter.Message)
	}
	for _, m := range msgs {
		l.msgs[m.Room] = append(l.msgs[m.Room], m)
	}
}

func (l *commitLog) count(room string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs[room])
}

// check fails t unless room's commits were seqs 1..n in order, with the stored ids.
func (l *commitLog) check(t *testing.T, node, room string, n int, ids map[int64]string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.msgs[room]
	if len(got) != n {
		t.Fatalf("%s: %d commits in %s, want %d", node, len(got), room, n)
	}
	for i, m := range got {
		if m.Seq != int64(i+1) || m.ID != ids[m.Seq] || m.Room != room {
			t.Fatalf("%s: commit %d of %s is seq %d id %s, want seq %d id %s", node, i, room, m.Seq, m.ID, i+1, ids[int64(i+1)])
		}
	}
}

func waitCommits(t *testing.T, l *commitLog, room string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.count(room) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commits in %s after 20 s", l.count(room), n, room)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCommitsReachEveryNode: two nodes on one Redis, both sending to two rooms at once: each
// node's OnCommit gets every message of every room, once, in seq order, with no gap.
func TestCommitsReachEveryNode(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	var logA, logB commitLog
	a := openTest(t, Config{URL: url, Prefix: prefix, OnCommit: logA.add})
	b := openTest(t, Config{URL: url, Prefix: prefix, OnCommit: logB.add})
	if _, err := a.CreateRoom(t.Context(), natter.Room{Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	const perSender = 150
	var mu sync.Mutex
	ids := map[string]map[int64]string{natter.DefaultRoom: {}, "ops": {}}
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, a, b} {
		for _, room := range []string{natter.DefaultRoom, "ops"} {
			wg.Go(func() {
				for j := range perSender {
					m, _, err := s.AppendMessage(context.Background(), natter.AppendRequest{Room: room, Author: fmt.Sprint("sender-", i), Body: fmt.Sprint(j), ClientID: fmt.Sprintf("c-%d-%d", i, j)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					ids[room][m.Seq] = m.ID
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, room := range []string{natter.DefaultRoom, "ops"} {
		for node, l := range map[string]*commitLog{"node A": &logA, "node B": &logB} {
			waitCommits(t, l, room, 4*perSender)
			l.check(t, node, room, 4*perSender, ids[room])
		}
	}
}

// TestLostSubscriptionCatchesUp: a node whose subscription is cut (here by CLIENT KILL) misses
// what is published meanwhile; once resubscribed it delivers the missed messages from the log,
// in order, before anything newer, erased ones included.
func TestLostSubscriptionCatchesUp(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	var logA commitLog
	openTest(t, Config{URL: url, Prefix: prefix, OnCommit: logA.add, ClientName: prefix + "-a"})
	b := openTest(t, Config{URL: url, Prefix: prefix, ClientName: prefix + "-b"})
	ids := map[int64]string{}
	send := func(n int) {
		for i := range n {
			m, _, err := b.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			ids[m.Seq] = m.ID
		}
	}
	send(5)
	waitCommits(t, &logA, natter.DefaultRoom, 5)

	admin := redistest.Client(t, url)
	clients, err := admin.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(clients, "\n") {
		if strings.Contains(line, " name="+prefix+"-a ") && strings.Contains(line, " cmd=subscribe") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscriptions of node A, want 1:\n%s", killed, clients)
	}
	send(20) // some, maybe all, published while node A is not subscribed
	// Deletions erase seqs 7 to 12 from the stream (they move to the erased entries' hash): the
	// catch-up reads the log around the holes.
	for seq := int64(7); seq <= 12; seq++ {
		m, _, err := b.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Kind: natter.KindDelete, Target: seq})
		if err != nil {
			t.Fatal(err)
		}
		ids[m.Seq] = m.ID
	}
	waitCommits(t, &logA, natter.DefaultRoom, 31)
	send(5)
	waitCommits(t, &logA, natter.DefaultRoom, 36)
	logA.check(t, "node A", natter.DefaultRoom, 36, ids)
}

// TestTakeToken: one bucket for every store on a prefix: a burst, then a refusal that says how
// long until the next token; looking takes nothing; other keys have buckets of their own.
func TestTakeToken(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	a := openTest(t, Config{URL: url, Prefix: prefix})
	b := openTest(t, Config{URL: url, Prefix: prefix})
	take := func(s *Store, key string, really bool) time.Duration {
		t.Helper()
		wait, err := s.TakeToken(t.Context(), key, 0.5, 2, really)
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	if w := take(a, "k", false); w != 0 {
		t.Fatalf("a look at a fresh bucket: wait %v", w)
	}
	if take(a, "k", true) != 0 || take(b, "k", true) != 0 {
		t.Fatal("the burst of 2 was refused")
	}
	for _, s := range []*Store{a, b} {
		if w := take(s, "k", true); w < 1500*time.Millisecond || w > 2*time.Second {
			t.Fatalf("past the burst: wait %v, want about 2 s (0.5 tokens a second)", w)
		}
		if w := take(s, "k", false); w < 1500*time.Millisecond {
			t.Fatalf("a look past the burst: wait %v", w)
		}
	}
	if take(b, "other", true) != 0 {
		t.Fatal("another key shares the bucket")
	}
}
