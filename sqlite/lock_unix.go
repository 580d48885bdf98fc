//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// dbLock keeps a second Store, in this process or another, from opening the same database: the
// committer keeps each room's last seq in memory, so two writers would hand out the same seqs (the
// second's commits fail) and neither would see the other's messages to fan them out. It is an
// flock on a file beside the database, which the kernel drops when the process ends, however
// it ends.
type dbLock struct{ f *os.File }

func lockDB(dbPath string) (*dbLock, error) {
	path := dbPath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sqlite: %s is in use by another natter%s: one server per data directory", dbPath, holder)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	// The holder's pid, for the message above; the lock is what counts, not the file's content.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dbLock{f: f}, nil
}

// release drops the lock. The file stays: removing it could let a third Store lock a new file
// while a second still waits on the old one.
func (l *dbLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the descriptor drops the flock
		l.f = nil
	}
}
