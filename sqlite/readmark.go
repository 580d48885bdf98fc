package sqlite

import (
	"context"
	"slices"
	"sync"
	"time"

	"natter"
)

// Read marks move every time a reader's page shows a new message, so they are not written one
// transaction each: SetReadMark keeps the newest mark per account and room in memory, and a
// writer goroutine stores what gathered in one transaction at most every markFlushEvery. The
// write takes the writer connection for one short transaction a second however many readers
// there are, instead of one per mark between the committer's batches. Marks are not fsynced on
// their own: the next commit's sync covers them, and a power cut before it loses at most the
// last marks, which the readers' pages send again.
const markFlushEvery = time.Second

// markWriter holds the marks not yet stored.
type markWriter struct {
	mu       sync.Mutex
	pending  map[string]map[string]natter.ReadMark // user -> room -> mark, not yet stored
	flushing map[string]map[string]natter.ReadMark // the batch being stored now, if any
	flushes  int                                   // batches stored (or failed) so far
	wake     chan struct{}                         // one send per batch to store; closed by Close
	closed   bool                                  // set (under mu) before wake is closed
	done     chan struct{}                         // closed when markLoop returns
}

// mergeMark is what a mark becomes when next is set over it: the further of the two in one epoch,
// next in another.
func mergeMark(old, next natter.ReadMark) natter.ReadMark {
	if old.Epoch == next.Epoch && old.Seq > next.Seq {
		return old
	}
	return next
}

// SetReadMark moves user's mark in mark.Room up to mark.Seq (natter.ReadMarkStore). The mark is
// stored within markFlushEvery; ReadMarks sees it at once.
func (s *Store) SetReadMark(ctx context.Context, user string, mark natter.ReadMark) error {
	if !natter.ValidUserName(user) {
		return natter.Errorf(natter.EINVALID, "user name %q is not valid", user)
	}
	m := &s.marks
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return natter.Errorf(natter.EUNAVAILABLE, "store is closed")
	}
	room, err := s.Room(ctx, mark.Room)
	if err != nil {
		return err
	}
	if err := natter.CheckReadMark(room, mark); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return natter.Errorf(natter.EUNAVAILABLE, "store is closed")
	}
	rooms := m.pending[user]
	if rooms == nil {
		rooms = make(map[string]natter.ReadMark)
		m.pending[user] = rooms
	}
	if old, ok := rooms[mark.Room]; ok {
		mark = mergeMark(old, mark)
	}
	rooms[mark.Room] = mark
	select {
	case m.wake <- struct{}{}:
	default: // a batch is already waiting to be stored; this mark joins it
	}
	return nil
}

// ReadMarks returns user's marks: the stored ones, with the ones on their way to be stored over
// them. A batch that was being stored when the rows were read is in the rows or still in
// flushing; if it left flushing meanwhile, the rows are read again.
func (s *Store) ReadMarks(ctx context.Context, user string) ([]natter.ReadMark, error) {
	m := &s.marks
	for {
		m.mu.Lock()
		gen := m.flushes
		m.mu.Unlock()
		marks, err := s.storedMarks(ctx, user)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		if m.flushes != gen {
			m.mu.Unlock()
			continue
		}
		byRoom := make(map[string]int, len(marks))
		for i, mk := range marks {
			byRoom[mk.Room] = i
		}
		for _, layer := range []map[string]map[string]natter.ReadMark{m.flushing, m.pending} {
			for room, mk := range layer[user] {
				if i, ok := byRoom[room]; ok {
					marks[i] = mergeMark(marks[i], mk)
				} else {
					byRoom[room] = len(marks)
					marks = append(marks, mk)
				}
			}
		}
		m.mu.Unlock()
		return marks, nil
	}
}

func (s *Store) storedMarks(ctx context.Context, user string) ([]natter.ReadMark, error) {
	rows, err := s.stmts.readMarks.QueryContext(ctx, user)
	if err != nil {
		return nil, natter.Internal("sqlite: read marks", err)
	}
	defer rows.Close()
	var marks []natter.ReadMark
	for rows.Next() {
		var m natter.ReadMark
		if err := rows.Scan(&m.Room, &m.Epoch, &m.Seq); err != nil {
			return nil, natter.Internal("sqlite: read marks", err)
		}
		marks = append(marks, m)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: read marks", err)
	}
	return marks, nil
}

// markLoop stores the pending marks, one transaction at most every markFlushEvery, until Close
// closes wake; then it stores what is left.
func (s *Store) markLoop() {
	defer close(s.marks.done)
	for range s.marks.wake {
		s.flushMarks()
		select {
		case <-time.After(markFlushEvery):
		case <-s.marksStop:
		}
	}
	s.flushMarks()
}

// flushMarks stores the pending marks in one transaction. They stay visible in flushing until it
// has committed; if it failed they go back to pending (under any newer ones) for the next try.
func (s *Store) flushMarks() {
	m := &s.marks
	m.mu.Lock()
	batch := m.pending
	if len(batch) == 0 {
		m.mu.Unlock()
		return
	}
	m.flushing, m.pending = batch, make(map[string]map[string]natter.ReadMark)
	m.mu.Unlock()
	err := s.storeMarks(batch)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushing = nil
	m.flushes++
	if err == nil {
		return
	}
	s.log.Warn("sqlite: storing read marks", "err", err)
	for user, rooms := range batch {
		for room, old := range rooms {
			if cur, ok := m.pending[user][room]; ok {
				old = mergeMark(old, cur)
			} else if m.pending[user] == nil {
				m.pending[user] = make(map[string]natter.ReadMark)
			}
			m.pending[user][room] = old
		}
	}
	if !m.closed {
		select {
		case m.wake <- struct{}{}: // try again after the pause
		default:
		}
	} else {
		s.log.Error("sqlite: read marks lost at close", "accounts", len(batch))
	}
}

func (s *Store) storeMarks(batch map[string]map[string]natter.ReadMark) error {
	ctx := context.Background()
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	stmt := tx.StmtContext(ctx, s.stmts.upsertMark)
	now := toNanos(s.now())
	for user, rooms := range batch {
		for _, mark := range rooms {
			if _, err := stmt.ExecContext(ctx, user, mark.Room, mark.Epoch, mark.Seq, now); err != nil {
				tx.Rollback()
				return err
			}
		}
	}
	return tx.Commit()
}

// startMarkWriter starts markLoop; Close stops it through stopMarkWriter.
func (s *Store) startMarkWriter() {
	s.marks.pending = make(map[string]map[string]natter.ReadMark)
	s.marks.wake = make(chan struct{}, 1)
	s.marks.done = make(chan struct{})
	s.marksStop = make(chan struct{})
	go s.markLoop()
}

// stopMarkWriter stores the pending marks and stops markLoop. SetReadMark refuses marks from then
// on, so none can arrive after the last flush.
func (s *Store) stopMarkWriter() {
	s.marks.mu.Lock()
	s.marks.closed = true
	close(s.marks.wake)
	s.marks.mu.Unlock()
	close(s.marksStop)
	<-s.marks.done
}

// The upsert of one mark: the further in one epoch, the new one in another.
const upsertMarkSQL = `INSERT INTO read_marks (user_name, room, epoch, seq, updated_at) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (user_name, room) DO UPDATE SET
		seq = CASE WHEN epoch = excluded.epoch THEN max(seq, excluded.seq) ELSE excluded.seq END,
		epoch = excluded.epoch, updated_at = excluded.updated_at`

// countChangesSQL counts a room's edits and deletions in a range of seqs through their partial
// index (INDEXED BY: without statistics the planner would rather scan the messages).
const countChangesSQL = `SELECT count(*) FROM messages INDEXED BY messages_changes
	WHERE room = ? AND seq > ? AND seq <= ? AND kind != ''`

// readChangesSQL reads a room's newest edits and deletions in a range of seqs, newest first,
// through the same partial index.
const readChangesSQL = `SELECT ` + messageColumns + ` FROM messages INDEXED BY messages_changes
	WHERE room = ? AND seq > ? AND seq <= ? AND kind != '' ORDER BY seq DESC LIMIT ?`

// ChangesSince returns the newest up to limit edits and deletions of room after seq after, oldest
// first, among those readers may see (natter.MessageStore).
func (s *Store) ChangesSince(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if limit <= 0 {
		limit = natter.DefaultPageSize
	}
	rows, err := s.stmts.readChanges.QueryContext(ctx, room, after, s.visibleSeq(room), limit)
	msgs, err := scanMessages(rows, err, limit)
	if err != nil {
		return nil, natter.Internal("sqlite: read changes", err)
	}
	if len(msgs) == 0 || s.isDeleted(room) {
		if err := s.roomExists(ctx, room); err != nil {
			return nil, err
		}
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// ChangesAfter returns how many of room's entries after seq after are edits or deletions, among
// those readers may see (natter.ReadMarkStore). The partial index messages_changes holds only
// those entries, so this reads none of the messages in between.
func (s *Store) ChangesAfter(ctx context.Context, room string, after int64) (int64, error) {
	var n int64
	if err := s.stmts.countChanges.QueryRowContext(ctx, room, after, s.visibleSeq(room)).Scan(&n); err != nil {
		return 0, natter.Internal("sqlite: count changes", err)
	}
	return n, nil
}

// Edits returns the edits of message target in room, oldest first (natter.MessageStore), from the
// index of changes by target.
func (s *Store) Edits(ctx context.Context, room string, target int64) ([]natter.Message, error) {
	rows, err := s.stmts.readEdits.QueryContext(ctx, room, target, s.visibleSeq(room))
	msgs, err := scanMessages(rows, err, 1<<30)
	if err != nil {
		return nil, natter.Internal("sqlite: read edits", err)
	}
	if len(msgs) == 0 || s.isDeleted(room) {
		if err := s.roomExists(ctx, room); err != nil {
			return nil, err
		}
	}
	if msgs == nil {
		msgs = []natter.Message{}
	}
	return msgs, nil
}
