package bench

import (
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"natter/ws"
)

// pollLoop reads the WebSocket subscribers' sockets from one OS thread with epoll, once each has
// subscribed. A goroutine per socket, woken by the runtime's poller, cost the load generator
// about 4 us of CPU per delivery in a fan-out to 10,000, CPU taken from the server it measures;
// the loop makes one epoll_wait per batch of ready sockets and one read per arrival.
type pollLoop struct {
	epfd, wake int // the epoll instance; an eventfd that wakes the loop for stops and quit
	mu         sync.Mutex
	conns      map[int32]*pollConn
	stops      []*pollConn // asked to stop by other goroutines
	quit       bool        // close asked the loop to end
	shut       bool        // the loop has ended: wake is closed, its number may be reused
	done       chan struct{}
}

// pollConn is one subscriber's socket in the loop. Only the loop's thread reads it, writes to it
// and closes it, so a descriptor number reused by a newer socket is never touched.
type pollConn struct {
	fd    int
	loop  *pollLoop
	fr    *frameReader // the subscriber's frame reader: got runs its handler on the loop's thread
	ended chan error   // buffered: why the connection ended
}

func newPollLoop() (*pollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	l := &pollLoop{epfd: epfd, wake: wake, conns: map[int32]*pollConn{}, done: make(chan struct{})}
	go l.run()
	return l, nil
}

// detach takes a WebSocket's socket away from the runtime: it returns a descriptor of its own
// (non-blocking, close-on-exec) and the bytes c had read ahead, and closes c, which leaves the
// socket open under the new descriptor.
func detach(c net.Conn) (fd int, pending []byte, err error) {
	under, pending := ws.Detach(c)
	sc, ok := under.(syscall.Conn)
	if !ok {
		return -1, nil, errors.New("the connection has no socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	fd = -1
	cerr := rc.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, nil, cerr
	}
	if err != nil {
		return -1, nil, err
	}
	under.Close() // the runtime forgets the socket; the duplicate keeps it open
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, pending, nil
}

// add puts a subscribed socket in the loop. Its frame reader must hold no whole frame not yet
// decoded. It refuses (net.ErrClosed) once the loop has ended: the lock held here keeps the loop
// from closing its epoll descriptor meanwhile.
func (l *pollLoop) add(pc *pollConn) error {
	pc.loop = l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shut {
		return net.ErrClosed
	}
	// Edge-triggered: a socket is reported once per arrival, and read until a read comes back
	// short (it found the socket empty). Level-triggered, epoll polled every socket read
	// since the last wait again: a fifth of the loop's CPU.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(pc.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, pc.fd, &ev); err != nil {
		return err
	}
	// In the map before the loop can look it up: the loop takes the lock to do so.
	l.conns[int32(pc.fd)] = pc
	return nil
}

// stop asks the loop to end pc (with net.ErrClosed), from any goroutine, even after the loop
// has ended (then it does nothing).
func (pc *pollConn) stop() {
	l := pc.loop
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.shut {
		l.stops = append(l.stops, pc)
		l.pokeLocked()
	}
}

// pokeLocked wakes the loop. l.mu is held, so the loop cannot close the eventfd meanwhile.
func (l *pollLoop) pokeLocked() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1) // an eventfd counts in a host-order uint64
	unix.Write(l.wake, one[:])
}

func (l *pollLoop) run() {
	runtime.LockOSThread() // one thread does all the reads; it blocks only in epoll_wait
	defer close(l.done)
	events := make([]unix.EpollEvent, 512)
	ready := make([]*pollConn, 0, len(events))
	var stops []*pollConn
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		quit := err != nil
		ready, stops = ready[:0], stops[:0]
		l.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == l.wake {
				var count [8]byte
				unix.Read(l.wake, count[:])
				quit = quit || l.quit
				stops = append(stops, l.stops...)
				clear(l.stops)
				l.stops = l.stops[:0]
			} else if pc := l.conns[ev.Fd]; pc != nil {
				ready = append(ready, pc)
			}
		}
		l.mu.Unlock()
		for _, pc := range ready {
			l.read(pc)
		}
		for _, pc := range stops {
			l.mu.Lock()
			in := l.conns[int32(pc.fd)] == pc
			l.mu.Unlock()
			if in {
				l.end(pc, net.ErrClosed)
			}
		}
		if quit {
			l.mu.Lock()
			l.shut = true
			left := slices.Collect(maps.Values(l.conns))
			l.mu.Unlock()
			for _, pc := range left {
				l.end(pc, net.ErrClosed)
			}
			unix.Close(l.epfd)
			unix.Close(l.wake)
			return
		}
	}
}

// read reads a ready socket until a read comes back short or fails with EAGAIN (the socket is
// empty: the next arrival is reported again), and decodes what came. One arrival, one read(2).
func (l *pollLoop) read(pc *pollConn) {
	for {
		p := pc.fr.space()
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(pc.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return
		case errno != 0:
			l.end(pc, errno)
			return
		case n == 0:
			l.end(pc, io.EOF)
			return
		}
		if err := pc.fr.got(int(n)); err != nil {
			l.end(pc, err)
			return
		}
		if int(n) < len(p) {
			return
		}
	}
}

// end takes pc out of the loop, closes its socket and reports why.
func (l *pollLoop) end(pc *pollConn, err error) {
	l.mu.Lock()
	delete(l.conns, int32(pc.fd))
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, pc.fd, nil)
	unix.Close(pc.fd)
	pc.ended <- err
}

// close stops the loop; the sockets still in it end with net.ErrClosed.
func (l *pollLoop) close() {
	l.mu.Lock()
	if !l.shut {
		l.quit = true
		l.pokeLocked()
	}
	l.mu.Unlock()
	<-l.done
}

// writeFrame writes a whole (small) client frame to a detached socket, waiting for room if the
// socket is full.
func writeFrame(fd int, frame []byte) error {
	for deadline := time.Now().Add(5 * time.Second); len(frame) > 0; {
		n, err := unix.Write(fd, frame)
		if n > 0 {
			frame = frame[n:]
		}
		switch {
		case err == unix.EAGAIN:
			if time.Now().After(deadline) {
				return errors.New("the server reads nothing")
			}
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, 100)
		case err == unix.EINTR:
		case err != nil:
			return err
		}
	}
	return nil
}

func closeFD(fd int) { unix.Close(fd) }
