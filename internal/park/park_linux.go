package park

import (
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether Waiters work here.
const Supported = true

// Waiter runs a function once a socket is readable, each time it is armed.
type Waiter struct {
	rc syscall.RawConn
	fn func()
	// Under poller.mu:
	id       uint64 // the arming's key in poller.waiting, 0 while not armed
	canceled bool
	added    bool // the socket is in the epoll set (disabled once its one-shot event fired)
}

// poller is the process's one epoll instance, started on first use and never stopped.
var poller struct {
	once    sync.Once
	epfd    int
	err     error
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]*Waiter
	// failArms, if set (tests: FailArms), is what every Arm returns.
	failArms error
}

// NewWaiter returns a Waiter that runs fn for the socket rc.
func NewWaiter(rc syscall.RawConn, fn func()) *Waiter {
	return &Waiter{rc: rc, fn: fn}
}

// Arm makes fn run once, on a new goroutine, when the socket has bytes to read, its peer hangs
// up or it fails; at once if it already does. Until then nothing runs for the socket. Only the
// socket's reader arms it, never twice before fn runs. It returns net.ErrClosed after Cancel or
// once the socket is closed; fn then does not run.
func (w *Waiter) Arm() error {
	p := &poller
	p.once.Do(start)
	if p.err != nil {
		return p.err
	}
	p.mu.Lock()
	if w.canceled {
		p.mu.Unlock()
		return net.ErrClosed
	}
	if p.failArms != nil {
		err := p.failArms
		p.mu.Unlock()
		return err
	}
	p.next++
	id := p.next
	w.id = id
	p.waiting[id] = w
	op := unix.EPOLL_CTL_MOD
	if !w.added {
		op = unix.EPOLL_CTL_ADD
	}
	// Set before the call, under the lock: once the call succeeds, fn may run and arm again.
	wasAdded := w.added
	w.added = true
	p.mu.Unlock()

	var ctlErr error
	// Control holds the descriptor open, so the call cannot reach another socket that took its
	// number. A closed socket has left the epoll set with its last descriptor.
	err := w.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		ctlErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("park: epoll_ctl: %w", ctlErr)
	}
	if err != nil {
		// Not armed, so fn cannot be running.
		p.mu.Lock()
		w.added = wasAdded
		if w.id == id {
			delete(p.waiting, id)
			w.id = 0
		}
		p.mu.Unlock()
		return err
	}
	return nil
}

// Cancel disarms w for good: fn does not run again unless it has already been started, and Arm
// fails from now on. Any goroutine may call it, more than once.
func (w *Waiter) Cancel() {
	p := &poller
	p.mu.Lock()
	w.canceled = true
	if w.id != 0 {
		delete(p.waiting, w.id)
		w.id = 0
	}
	p.mu.Unlock()
}

// FailArms makes every Arm fail with err until the returned function is called, for tests of
// what callers do when the poller refuses (epoll's limit on watched sockets, for one).
func FailArms(err error) (restore func()) {
	p := &poller
	p.once.Do(start)
	p.mu.Lock()
	p.failArms = err
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.failArms = nil
		p.mu.Unlock()
	}
}

// Armed returns how many Waiters are armed now, for tests.
func Armed() int {
	p := &poller
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

func start() {
	p := &poller
	p.epfd, p.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if p.err != nil {
		p.err = fmt.Errorf("park: epoll_create1: %w", p.err)
		return
	}
	p.waiting = map[uint64]*Waiter{}
	go loop(p.epfd)
}

// loop starts the function of every Waiter whose socket is ready. It blocks in epoll_wait as a
// system call, so it holds a thread but no P while it waits.
func loop(epfd int) {
	p := &poller
	events := make([]unix.EpollEvent, 256)
	ready := make([]*Waiter, 0, len(events))
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("park: epoll_wait: %v", err)) // only a bug gets here: epfd stays open
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if w := p.waiting[id]; w != nil {
				delete(p.waiting, id)
				w.id = 0
				ready = append(ready, w)
			}
		}
		p.mu.Unlock()
		for i, w := range ready {
			go w.fn()
			ready[i] = nil
		}
	}
}
