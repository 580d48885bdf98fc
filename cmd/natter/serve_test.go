package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"natter"
	"natter/internal/redistest"
	"natter/internal/syncbuf"
	"natter/ws"
)

// natterBin is the natter binary built once for the tests that run it as a real process.
var natterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "natter-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	natterBin = filepath.Join(dir, "natter")
	args := []string{"build", "-o", natterBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building natter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `natter serve`.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	logs *syncbuf.Buffer
	exit chan error
}

// startNatter runs `natter serve` on a free loopback port and waits for the address it prints.
func startNatter(t *testing.T, dataDir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(natterBin, append([]string{"serve", "--data-dir", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	if !containsPrefix(env, "NATTER_ADDR=") {
		cmd.Args = append(cmd.Args, "--addr", "127.0.0.1:0")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, logs: &syncbuf.Buffer{}, exit: make(chan error, 1)}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("natter log:\n%s", p.logs.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("natter printed no address: %v", err)
	}
	const prefix = "natter is listening on "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("unexpected first line %q", line)
	}
	p.URL = strings.TrimSpace(strings.TrimPrefix(line, prefix))
	go io.Copy(io.Discard, stdout)
	return p
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func (p *proc) call(method, path, token string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, p.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (p *proc) signIn(name string) string {
	var s struct{ Token string }
	if code := p.call("POST", "/api/session", "", map[string]string{"name": name}, &s); code != 200 {
		p.t.Fatalf("sign in: %d", code)
	}
	return s.Token
}

func (p *proc) waitExit(timeout time.Duration) error {
	select {
	case err := <-p.exit:
		return err
	case <-time.After(timeout):
		p.t.Fatalf("natter did not exit within %s", timeout)
		return nil
	}
}

type page struct {
	Epoch    string           `json:"epoch"`
	LastSeq  int64            `json:"last_seq"`
	Messages []natter.Message `json:"messages"`
}

func TestServeAnswersHealthAndReadiness(t *testing.T) {
	p := startNatter(t, t.TempDir(), nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := p.call("GET", path, "", nil, nil); code != 200 {
			t.Errorf("%s: status %d", path, code)
		}
	}
}

func TestServeReadsFlagsFromEnvironment(t *testing.T) {
	p := startNatter(t, t.TempDir(), []string{"NATTER_ADDR=127.0.0.1:0", "NATTER_GUESTS=false"})
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if code := p.call("POST", "/api/session", "", map[string]string{"name": "nobody"}, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Fatalf("guest sign-in with NATTER_GUESTS=false: %d %q", code, e.Error.Code)
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	out, err := exec.Command(natterBin, "serve", "--sync", "SOMETIMES").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--sync must be FULL or NORMAL") {
		t.Fatalf("bad --sync: err %v, output %q", err, out)
	}
	out, err = exec.Command(natterBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--tls-cert", "cert.pem").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TLS needs both a certificate and its key") {
		t.Fatalf("--tls-cert without --tls-key: err %v, output %q", err, out)
	}
	out, err = exec.Command(natterBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TLS certificate") {
		t.Fatalf("--tls-cert that does not exist: err %v, output %q", err, out)
	}
	out, err = exec.Command(natterBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--max-body", "10000").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "frame limit") {
		t.Fatalf("--max-body beyond what --max-frame can carry: err %v, output %q", err, out)
	}
}

// TestServeRefusesADataDirInUse: a second natter on the data directory of a running one exits
// with an error naming the first, and the first goes on serving.
func TestServeRefusesADataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first := startNatter(t, dir, nil)
	out, err := exec.Command(natterBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	want := fmt.Sprintf("in use by another natter (pid %d)", first.cmd.Process.Pid)
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("second natter on one data dir: err %v, output %q; want it to say %q", err, out, want)
	}
	tok := first.signIn("ann")
	if code := first.call("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "still here"}, nil); code != 201 {
		t.Fatalf("the first natter after the refusal: send answered %d", code)
	}
}

// TestServeConnectionLimitFlags: --max-user-conns, --max-conns and --max-addr-conns reach the
// server: past them an event stream is refused with 429 rate_limited, 503 unavailable and 429.
func TestServeConnectionLimitFlags(t *testing.T) {
	p := startNatter(t, t.TempDir(), nil, "--max-user-conns", "1", "--max-conns", "2")
	alice, bob, carol := p.signIn("alice"), p.signIn("bob"), p.signIn("carol")
	open := func(base, tok string) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/rooms/lobby/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("event stream: %v %v", resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	open(p.URL, alice)
	if code := p.call("GET", "/api/rooms/lobby/events", alice, nil, &e); code != 429 || e.Error.Code != "rate_limited" {
		t.Fatalf("alice's second stream with --max-user-conns 1: %d %q", code, e.Error.Code)
	}
	open(p.URL, bob)
	if code := p.call("GET", "/api/rooms/lobby/events", carol, nil, &e); code != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("a third stream with --max-conns 2: %d %q", code, e.Error.Code)
	}
	for _, flag := range []string{"--max-user-conns", "--max-addr-conns"} {
		out, err := exec.Command(natterBin, "serve", flag, "0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), flag+" must be positive") {
			t.Fatalf("%s 0: err %v, output %q", flag, err, out)
		}
	}

	// --max-addr-conns: every client here is 127.0.0.1.
	q := startNatter(t, t.TempDir(), nil, "--max-addr-conns", "1")
	dan, eve := q.signIn("dan"), q.signIn("eve")
	open(q.URL, dan)
	if code := q.call("GET", "/api/rooms/lobby/events", eve, nil, &e); code != 429 || e.Error.Code != "rate_limited" {
		t.Fatalf("a second stream from one address with --max-addr-conns 1: %d %q", code, e.Error.Code)
	}
}

// TestServeSignInLimitFlags: --signin-rate and --trusted-proxy reach the server, from the
// environment too, where lists are comma-separated (IPv6 addresses and origins hold colons);
// bad values are refused at start.
func TestServeSignInLimitFlags(t *testing.T) {
	p := startNatter(t, t.TempDir(), []string{
		"NATTER_SIGNIN_RATE=2",
		"NATTER_TRUSTED_PROXY=::1,127.0.0.0/8",
		"NATTER_ALLOWED_ORIGIN=https://chat.example:8443,https://other.example",
	})
	signIn := func(name, client string) (int, string) {
		req, _ := http.NewRequest("POST", p.URL+"/api/session", strings.NewReader(`{"name":"`+name+`"}`))
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Message
	}
	for _, name := range []string{"ann", "ben"} {
		if code, msg := signIn(name, "203.0.113.5"); code != 200 {
			t.Fatalf("sign-in within --signin-rate 2: %d %s", code, msg)
		}
	}
	if code, msg := signIn("cat", "203.0.113.5"); code != 429 || !strings.Contains(msg, "203.0.113.5") {
		t.Fatalf("third sign-in from one client with NATTER_SIGNIN_RATE=2: %d %q", code, msg)
	}
	if code, msg := signIn("dan", "203.0.113.6"); code != 200 {
		t.Fatalf("another client behind the trusted proxy: %d %s", code, msg)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--trusted-proxy", "10.0.0.0/33"}, `trusted proxy "10.0.0.0/33" is not an IP address or a CIDR prefix`},
		{[]string{"--trusted-proxy", "10.0.0.1,proxy.example"}, `trusted proxy "proxy.example" is not`},
		{[]string{"--signin-rate", "0"}, "--signin-rate must be positive"},
		{[]string{"--retention", "5m"}, "--retention: messages are kept for at least an hour"},
		{[]string{"--retention", "soon"}, `not "soon"`},
	} {
		out, err := exec.Command(natterBin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("natter serve %q: err %v, output %q; want it to say %q", c.args, err, out, c.want)
		}
	}
}

// TestAckedMessagesSurviveSIGKILL kills natter without warning while senders are busy: every
// message that was acknowledged must be there after a restart, with the same seq and epoch, and
// the log must have no gap.
func TestAckedMessagesSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := startNatter(t, dir, nil, "--send-rate", "-1")
	var before page
	p.call("GET", "/api/rooms/lobby/messages", p.signIn("reader"), nil, &before)

	var (
		mu    sync.Mutex
		acked = map[int64]string{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := range 8 {
		tok := p.signIn(fmt.Sprintf("w%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf("w%d #%d", w, i)
				data, _ := json.Marshal(map[string]string{"body": body})
				req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/api/rooms/lobby/messages", bytes.NewReader(data))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // killed mid-request: not acknowledged
				}
				var m struct{ Message natter.Message }
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 201 {
					return
				}
				mu.Lock()
				acked[m.Message.Seq] = body
				n := len(acked)
				mu.Unlock()
				if n == 300 {
					p.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	p.waitExit(30 * time.Second)
	cancel()
	wg.Wait()
	if len(acked) < 300 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}

	p2 := startNatter(t, dir, nil)
	var after page
	p2.call("GET", "/api/rooms/lobby/messages?after=0&limit=1000", p2.signIn("reader"), nil, &after)
	if after.Epoch != before.Epoch {
		t.Errorf("epoch changed across the crash: %q then %q", before.Epoch, after.Epoch)
	}
	for i, m := range after.Messages {
		if m.Seq != int64(i+1) {
			t.Fatalf("after restart message %d has seq %d: the log has a gap", i, m.Seq)
		}
	}
	stored := map[int64]string{}
	for _, m := range after.Messages {
		stored[m.Seq] = m.Body
	}
	for seq, body := range acked {
		if stored[seq] != body {
			t.Errorf("acknowledged seq %d %q is %q after restart", seq, body, stored[seq])
		}
	}
	t.Logf("%d acknowledged, %d stored after SIGKILL and restart", len(acked), len(after.Messages))
}

// TestClusterSurvivesANodeKilled: two natter processes share one Redis. Writers send to node A
// until it is killed (SIGKILL), then retry what was unanswered on node B with the same client_id,
// as clients behind a load balancer would, and go on there. Node B's log then holds every
// acknowledged message once, under the seq it was acknowledged with, with no gap and the same
// epoch.
func TestClusterSurvivesANodeKilled(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	args := []string{"--redis", url, "--redis-prefix", prefix, "--send-rate", "-1"}
	a := startNatter(t, t.TempDir(), nil, args...)
	b := startNatter(t, t.TempDir(), nil, args...)
	var before page
	b.call("GET", "/api/rooms/lobby/messages", b.signIn("reader"), nil, &before)

	type sent struct{ body, id string }
	var (
		mu     sync.Mutex
		acked  = map[int64]sent{}
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	send := func(base, tok, body, clientID string) (natter.Message, int, error) {
		data, _ := json.Marshal(map[string]string{"body": body, "client_id": clientID})
		req, _ := http.NewRequest("POST", base+"/api/rooms/lobby/messages", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return natter.Message{}, 0, err
		}
		defer resp.Body.Close()
		var m struct{ Message natter.Message }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return natter.Message{}, resp.StatusCode, err
		}
		return m.Message, resp.StatusCode, nil
	}
	for w := range 8 {
		tok := a.signIn(fmt.Sprintf("w%d", w)) // a session in Redis: node B takes it too
		wg.Go(func() {
			node := a.URL
			for i := range 100 {
				body, cid := fmt.Sprintf("w%d #%d", w, i), fmt.Sprintf("w%d-%d", w, i)
				m, status, err := send(node, tok, body, cid)
				if err != nil && node == a.URL {
					node = b.URL // A is gone: the same message again, on B
					m, status, err = send(node, tok, body, cid)
				}
				if err != nil || (status != 201 && status != 200) || m.Body != body {
					t.Errorf("w%d #%d on %s: %v %d %+v", w, i, node, err, status, m)
					return
				}
				mu.Lock()
				if prev, ok := acked[m.Seq]; ok && prev.body != body {
					t.Errorf("seq %d acknowledged for %q and for %q", m.Seq, prev.body, body)
				}
				acked[m.Seq] = sent{body, m.ID}
				n := len(acked)
				mu.Unlock()
				if n >= 300 && killed.CompareAndSwap(false, true) {
					a.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		})
	}
	wg.Wait()
	if !killed.Load() {
		t.Fatal("node A was never killed")
	}
	a.waitExit(30 * time.Second)
	if len(acked) != 800 {
		t.Fatalf("%d distinct seqs acknowledged, want 800 (one per message)", len(acked))
	}

	reader := b.signIn("reader")
	var all []natter.Message
	for {
		var p page
		b.call("GET", fmt.Sprintf("/api/rooms/lobby/messages?after=%d&limit=1000", int64(len(all))), reader, nil, &p)
		if p.Epoch != before.Epoch {
			t.Fatalf("epoch %q on B after the kill, %q before", p.Epoch, before.Epoch)
		}
		all = append(all, p.Messages...)
		if len(p.Messages) == 0 || int64(len(all)) >= p.LastSeq {
			break
		}
	}
	if len(all) != 800 {
		t.Fatalf("node B's log holds %d messages, want 800", len(all))
	}
	for i, m := range all {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: the log has a gap", i, m.Seq)
		}
		if want := acked[m.Seq]; m.Body != want.body || m.ID != want.id {
			t.Fatalf("seq %d is %q (id %s), acknowledged as %q (id %s)", m.Seq, m.Body, m.ID, want.body, want.id)
		}
	}
}

// TestSIGTERMDrainsAndExitsCleanly checks the shutdown order: WebSockets get 1001 "going away",
// SSE streams end, a parked long-poll is answered, and the process exits 0.
func TestSIGTERMDrainsAndExitsCleanly(t *testing.T) {
	p := startNatter(t, t.TempDir(), nil)
	tok := p.signIn("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, _, err := ws.Dial(ctx, strings.Replace(p.URL, "http", "ws", 1)+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(ws.OpText, []byte(`{"type":"subscribe","room":"lobby"}`))
	if _, data, err := conn.ReadMessage(); err != nil || !strings.Contains(string(data), `"subscribed"`) {
		t.Fatalf("subscribe: %s %v", data, err)
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/api/rooms/lobby/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()

	pollDone := make(chan int, 1)
	go func() {
		var pg page
		pollDone <- p.call("GET", "/api/rooms/lobby/messages?after=0&wait=60", tok, nil, &pg)
	}()
	time.Sleep(200 * time.Millisecond) // let the long-poll park; the test holds either way

	p.cmd.Process.Signal(syscall.SIGTERM)

	closeErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				closeErr <- err
				return
			}
		}
	}()
	select {
	case err := <-closeErr:
		ce, ok := err.(*ws.CloseError)
		if !ok || ce.Code != ws.CloseGoingAway {
			t.Errorf("WebSocket ended with %v, want close 1001", err)
		}
	case <-ctx.Done():
		t.Fatal("WebSocket was not closed")
	}
	if _, err := io.Copy(io.Discard, sse.Body); err != nil {
		t.Logf("SSE stream ended with %v", err)
	}
	select {
	case code := <-pollDone:
		if code != 200 {
			t.Errorf("parked long-poll answered %d, want 200", code)
		}
	case <-ctx.Done():
		t.Fatal("parked long-poll was not answered")
	}
	if err := p.waitExit(30 * time.Second); err != nil {
		t.Fatalf("natter exited with %v, want 0", err)
	}
}

// TestBackupAndRestore: `natter backup` copies a running natter's database; `natter restore`
// refuses while natter runs and, once it is stopped, puts the copy in place: the restarted natter
// has the copy's messages under new epochs, and goes on from its last seq.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	p := startNatter(t, dir, nil, "--send-rate", "-1")
	tok := p.signIn("ann")
	for i := range 5 {
		if code := p.call("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": fmt.Sprint("kept ", i)}, nil); code != 201 {
			t.Fatalf("send %d: %d", i, code)
		}
	}
	var before page
	p.call("GET", "/api/rooms/lobby/messages?after=0", tok, nil, &before)
	backup := filepath.Join(t.TempDir(), "natter-backup.db")
	out, err := exec.Command(natterBin, "backup", "--data-dir", dir, backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backed up 1 rooms and 5 messages") {
		t.Fatalf("backup of a running natter: %v %q", err, out)
	}
	// After the backup: lost by the restore.
	p.call("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "not in the backup"}, nil)
	out, err = exec.Command(natterBin, "restore", "--data-dir", dir, backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another natter") {
		t.Fatalf("restore under a running natter: %v %q", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(30 * time.Second); err != nil {
		t.Fatalf("natter exited with %v", err)
	}
	out, err = exec.Command(natterBin, "restore", "--data-dir", dir, backup).CombinedOutput()
	if err != nil {
		t.Fatalf("restore: %v %q", err, out)
	}

	p = startNatter(t, dir, nil, "--send-rate", "-1")
	tok = p.signIn("ann")
	var after page
	p.call("GET", "/api/rooms/lobby/messages?after=0", tok, nil, &after)
	if after.LastSeq != 5 || len(after.Messages) != 5 || after.Messages[4].Body != "kept 4" {
		t.Fatalf("after restore: last_seq %d, %d messages", after.LastSeq, len(after.Messages))
	}
	if after.Epoch == before.Epoch {
		t.Fatalf("the restored room kept its epoch %q: clients would keep cursors past its end", after.Epoch)
	}
	var m struct{ Message natter.Message }
	if code := p.call("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "after the restore"}, &m); code != 201 || m.Message.Seq != 6 {
		t.Fatalf("send after restore: %d seq %d", code, m.Message.Seq)
	}
}
