package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"natter"
)

// With Synchronous FULL, natter makes commits durable itself rather than letting SQLite do it
// inside each commit. The writer runs with synchronous=NORMAL, so a commit only writes its frames
// to the WAL; natter then fsyncs the WAL file, and only after that are the batch's messages
// visible to readers, broadcast (OnCommit) and acknowledged. That is the guarantee SQLite's FULL
// gives (the WAL is synced after the commit, before anyone is told). Checkpoints still sync as
// SQLite always does (the WAL before copying it back, the database file after), so a message
// that leaves the WAL is durable in the database file first.
//
// What it buys is a pipeline under a backlog. When a batch is full, or an earlier one is still
// syncing, the committer hands the batch to the syncer goroutine and stores the next one while
// the disk works; one fsync then covers every batch committed before it began. Otherwise the
// committer syncs the batch itself, as SQLite would: handing off costs a goroutine switch and,
// with few senders, only splits them into smaller commits.

// walSyncer fsyncs the WAL file.
type walSyncer struct {
	path    string // the database's WAL file
	dir     string
	dirOnce sync.Once
	dirErr  error
	// hook, if set (tests), runs before each fsync; an error it returns fails the fsync.
	hook func() error
}

func newWALSyncer(dbPath string) *walSyncer {
	return &walSyncer{path: dbPath + "-wal", dir: filepath.Dir(dbPath)}
}

// sync makes everything written to the WAL so far durable. The file is opened for each call, so
// the sync always reaches the WAL SQLite uses now. No WAL means nothing is waiting in one (SQLite
// removes it only after copying it all into the synced database file).
func (w *walSyncer) sync() error {
	if w.hook != nil {
		if err := w.hook(); err != nil {
			return err
		}
	}
	// The WAL's directory entry must be durable too; once is enough (SQLite keeps the file).
	w.dirOnce.Do(func() { w.dirErr = syncPath(w.dir) })
	if w.dirErr != nil {
		return w.dirErr
	}
	err := syncPath(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncJob is one committed (or failed) batch on its way to the syncer, in commit order.
type syncJob struct {
	batch   []*appendCall
	created []natter.Message
	rooms   []roomSeq // the batch's rooms and their new last seqs
}

type roomSeq struct {
	room string
	seq  int64
}

// syncLoop answers batches in commit order, after an fsync that began after they committed.
func (s *Store) syncLoop() {
	defer close(s.syncDone)
	var jobs []syncJob
	for j := range s.syncq {
		jobs = append(jobs[:0], j)
	more:
		for {
			select {
			case j, ok := <-s.syncq:
				if !ok {
					break more
				}
				jobs = append(jobs, j)
			default:
				break more
			}
		}
		if s.storeFailed() == nil {
			if err := s.wal.sync(); err != nil {
				s.failStore(err)
			}
		}
		for i := range jobs {
			s.finishBatch(&jobs[i])
			jobs[i] = syncJob{}
			<-s.syncSlots
		}
	}
}

// finishBatch makes a synced batch visible, reports it to OnCommit, then answers its callers. If
// the store has failed, the callers whose messages were stored get its error instead: their
// messages may not be durable, and are not broadcast.
func (s *Store) finishBatch(j *syncJob) {
	if ferr := s.storeFailed(); ferr != nil {
		for _, c := range j.batch {
			if c.err == nil {
				c.msg, c.created, c.err = natter.Message{}, false, ferr
			}
		}
	} else {
		s.makeVisible(j.rooms)
		if len(j.created) > 0 && s.onCommit != nil {
			s.onCommit(j.created)
		}
	}
	answer(j.batch)
}

// failStore stops the store after an fsync of the WAL failed. After a failed fsync the kernel may
// have dropped the dirty pages, so retrying proves nothing; what reached the disk is only known
// once natter restarts and SQLite recovers the WAL. Until then every append fails.
func (s *Store) failStore(err error) {
	s.log.Error("sqlite: fsync of the WAL failed; the store accepts no more messages until natter restarts", "err", err)
	e := &natter.Error{Code: natter.EUNAVAILABLE, Message: "the store could not make messages durable and must be restarted", Err: err}
	s.failed.CompareAndSwap(nil, e)
}

// storeFailed returns the error of a failed store, or nil.
func (s *Store) storeFailed() error {
	if e := s.failed.Load(); e != nil {
		return e
	}
	return nil
}

// visibleSeqs is, per room, the last seq readers may see while a later one is committed but not
// yet synced. Rooms absent from it have nothing waiting.
type visibleSeqs struct {
	mu  sync.RWMutex
	seq map[string]int64
}

// makeVisible raises the rooms' visible seqs once their messages are durable.
func (s *Store) makeVisible(rooms []roomSeq) {
	if s.wal == nil || len(rooms) == 0 {
		return
	}
	s.visible.mu.Lock()
	for _, r := range rooms {
		s.visible.seq[r.room] = max(s.visible.seq[r.room], r.seq)
	}
	s.visible.mu.Unlock()
}

// visibleSeq is the last seq of room that readers may see.
func (s *Store) visibleSeq(room string) int64 {
	if s.wal == nil {
		return 1<<63 - 1 // Synchronous NORMAL: visible once committed, as before
	}
	s.visible.mu.RLock()
	seq, ok := s.visible.seq[room]
	s.visible.mu.RUnlock()
	if !ok {
		return 1<<63 - 1
	}
	return seq
}

// syncWrite makes a write that went around the committer (rooms, accounts, sessions) durable
// before its caller hears of it.
func (s *Store) syncWrite() error {
	if s.wal == nil {
		return nil
	}
	if err := s.storeFailed(); err != nil {
		return err
	}
	if err := s.wal.sync(); err != nil {
		s.failStore(err)
		return s.storeFailed()
	}
	return nil
}

// track puts room in visible, at last (everything up to it is synced), the first time the
// committer stores a message in it. Committer only.
func (s *Store) track(room string, last int64) {
	if s.tracked == nil || s.tracked[room] {
		return
	}
	s.tracked[room] = true
	s.visible.mu.Lock()
	s.visible.seq[room] = last
	s.visible.mu.Unlock()
}
