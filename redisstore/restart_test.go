package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"natter"
)

// privateRedis runs a redis-server of its own on a free loopback port with an append-only file in
// dir, so that the test can stop and start it; stop kills it (SIGKILL). It skips without
// redis-server, except with CI=true.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and there is no redis-server to run")
		}
		t.Skip("no redis-server on PATH (apt-get install redis-server): skipping")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &privateRedis{t: t, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d did not start: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// TestRedisRestart: while Redis is down, sends fail with unavailable and nothing is half-stored;
// once it is back (with its append-only file), both nodes reconnect by themselves, seqs go on from
// where they were, and the node that was only listening delivers what the other sent since.
func TestRedisRestart(t *testing.T) {
	r := startPrivateRedis(t)
	var logA commitLog
	a := openTest(t, Config{URL: r.url(), OnCommit: logA.add})
	b := openTest(t, Config{URL: r.url()})
	ids := map[int64]string{}
	send := func(s *Store, body string) (natter.Message, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: body})
		if err == nil {
			ids[m.Seq] = m.ID
		}
		return m, err
	}
	for i := range 5 {
		if _, err := send(b, fmt.Sprint("before ", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCommits(t, &logA, natter.DefaultRoom, 5)

	r.stop()
	if _, err := send(b, "while down"); natter.ErrorCode(err) != natter.EUNAVAILABLE {
		t.Fatalf("a send while Redis is down: %v, want unavailable", err)
	}
	r.start()
	deadline := time.Now().Add(30 * time.Second)
	var m natter.Message
	var err error
	for m, err = send(b, "after 0"); err != nil; m, err = send(b, "after 0") {
		if time.Now().After(deadline) {
			t.Fatalf("sends still fail 30 s after Redis came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m.Seq != 6 {
		t.Fatalf("the first send after the restart got seq %d, want 6", m.Seq)
	}
	for i := 1; i < 5; i++ {
		if _, err := send(b, fmt.Sprint("after ", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCommits(t, &logA, natter.DefaultRoom, 10)
	logA.check(t, "node A", natter.DefaultRoom, 10, ids)
	if _, err := send(a, "node A sends again"); err != nil {
		t.Fatalf("node A after the restart: %v", err)
	}
}

// TestScriptsFlushed: after Redis forgets its scripts (SCRIPT FLUSH, or a restart), sends and
// lookups load them again by themselves, and nothing is stored twice.
func TestScriptsFlushed(t *testing.T) {
	r := startPrivateRedis(t)
	s := openTest(t, Config{URL: r.url()})
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "one", ClientID: "c-1"}
	if _, _, err := s.AppendMessage(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if m, found, err := s.FindByClientID(t.Context(), req); err != nil || !found || m.Seq != 1 {
		t.Fatalf("lookup after the flush: %+v %v %v", m, found, err)
	}
	if err := s.rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	m, created, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "two"})
	if err != nil || !created || m.Seq != 2 {
		t.Fatalf("send after the flush: %+v %v %v; want seq 2", m, created, err)
	}
	if msgs, err := s.MessagesAfter(t.Context(), natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 2 {
		t.Fatalf("log after the flushes: %d messages, %v; want 2", len(msgs), err)
	}
}
