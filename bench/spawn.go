package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Server is a natter server started by Spawn as a child process.
type Server struct {
	URL string
	PID int

	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

// Spawn starts `exe serve` on a random loopback port with a fresh data directory, guests on and
// no send or sign-in rate limits, followed by extra (later flags win), and waits for its "natter is listening
// on URL" line. The server's log goes to logw. Close stops it and removes the data directory.
func Spawn(ctx context.Context, exe string, extra []string, logw io.Writer) (*Server, error) {
	dir, err := os.MkdirTemp("", "natter-bench-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--guests=true", "--send-rate", "-1", "--signin-rate", "-1", "--room-rate", "-1", "--max-addr-conns", "-1", "--log-level", "warn"}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Stderr = logw
	cmd.Env = os.Environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	s := &Server{PID: cmd.Process.Pid, cmd: cmd, dir: dir, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "natter is listening on "); ok && !sent {
				urls <- strings.TrimSpace(u)
				sent = true
				continue
			}
			fmt.Fprintln(logw, line)
		}
		cmd.Wait()
		close(s.exited)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case s.URL = <-urls:
		return s, nil
	case <-s.exited:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("the spawned server exited before listening (%v); its log is above", cmd.ProcessState)
	case <-t.C:
		s.Close()
		return nil, errors.New("the spawned server did not print its URL within 30 s")
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// Close stops the server (SIGTERM, then SIGKILL after 15 s) and removes its data directory.
func (s *Server) Close() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		s.cmd.Process.Kill()
		<-s.exited
	}
	return os.RemoveAll(s.dir)
}
