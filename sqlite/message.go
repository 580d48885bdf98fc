package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"natter"
)

// idBytes is the size of a message id's randomness: 128 bits never collide in practice.
const idBytes = 16

// appendCall is one append waiting for the committer. The committer fills in the result, then
// either calls then (AppendMessageAsync) or signals done (AppendMessage; buffered, so it never
// blocks on a caller that gave up).
type appendCall struct {
	ctx     context.Context
	req     natter.AppendRequest
	msg     natter.Message
	created bool
	err     error
	done    chan struct{}
	then    func(natter.Message, bool, error)
}

// AppendMessage stores req at the end of its room's log. It returns once the message is committed
// (durable with Synchronous FULL) and OnCommit has seen it.
func (s *Store) AppendMessage(ctx context.Context, req natter.AppendRequest) (natter.Message, bool, error) {
	if err := natter.ValidateAppend(req, s.maxBody); err != nil {
		return natter.Message{}, false, err
	}
	c := s.calls.Get().(*appendCall)
	c.ctx, c.req = ctx, req
	if err := s.enqueue(ctx, c); err != nil {
		s.putCall(c)
		return natter.Message{}, false, err
	}
	select {
	case <-c.done:
		msg, created, err := c.msg, c.created, c.err
		s.putCall(c)
		return msg, created, err
	case <-ctx.Done():
		// The committer still owns c and may yet store the message; a retry with the same
		// client_id finds it. c is left to the garbage collector rather than reused.
		return natter.Message{}, false, canceled(ctx)
	}
}

// AppendMessageAsync validates req and queues it behind everything queued before it, then returns
// without waiting, so one sender can have several appends in flight and still share group commits.
// done runs on the committer goroutine after the commit and after OnCommit, and must not block. If
// AppendMessageAsync returns an error, done is never called. It implements natter.AsyncAppender.
func (s *Store) AppendMessageAsync(ctx context.Context, req natter.AppendRequest, done func(msg natter.Message, created bool, err error)) error {
	if err := natter.ValidateAppend(req, s.maxBody); err != nil {
		return err
	}
	// Not pooled: nothing tells when done's caller is finished with the call.
	return s.enqueue(ctx, &appendCall{ctx: ctx, req: req, then: done})
}

var _ natter.AsyncAppender = (*Store)(nil)

// enqueue hands c to the committer. The channel keeps the order of one goroutine's appends.
func (s *Store) enqueue(ctx context.Context, c *appendCall) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return natter.Errorf(natter.EUNAVAILABLE, "the store is closed")
	}
	select {
	case s.appends <- c:
		return nil
	case <-ctx.Done():
		return canceled(ctx)
	}
}

// putCall recycles c once its caller holds no further interest in it.
func (s *Store) putCall(c *appendCall) {
	*c = appendCall{done: c.done}
	s.calls.Put(c)
}

// canceled reports that the caller stopped waiting; errors.Is(err, context.Canceled) still works.
func canceled(ctx context.Context) error {
	return &natter.Error{Code: natter.EUNAVAILABLE, Message: "gave up waiting for the message to be stored", Err: context.Cause(ctx)}
}

// commitLoop is the committer: the only goroutine that writes messages. It takes whatever is
// queued, up to maxBatch, and commits it as one transaction, so that 100 waiting senders cost one
// fsync rather than 100.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	batch := make([]*appendCall, 0, s.maxBatch)
	for {
		c, ok := <-s.appends
		if !ok {
			return
		}
		batch = append(batch[:0], c)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case c, ok := <-s.appends:
				if !ok {
					break fill // Close: commit this batch, then the receive above ends the loop
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.finishCheckpoint()
		s.commitBatch(batch)
		clear(batch) // drop references so finished calls can be collected
	}
}

// batchState is the committer's scratch space for one batch.
type batchState struct {
	insert   *sql.Stmt
	byClient *sql.Stmt
	lastSeq  *sql.Stmt
	dirty    map[string]int64 // rooms whose last_seq moved, and where to
}

// commitBatch stores batch in one transaction, reports the new messages to OnCommit, then answers
// every caller. A request that fails on its own (unknown room, caller gone) fails alone; anything
// unexpected fails the whole batch, which then stores nothing.
func (s *Store) commitBatch(batch []*appendCall) {
	created, err := s.storeBatch(batch)
	if err != nil {
		// The transaction rolled back, so the cached seqs may run ahead of the database; reload
		// them on next use so that seqs stay gapless.
		clear(s.lastSeq)
		s.log.Error("sqlite: append batch failed", "messages", len(batch), "err", err)
		ierr := natter.Internal("sqlite: append", err)
		for _, c := range batch {
			if c.err == nil {
				c.msg, c.created, c.err = natter.Message{}, false, ierr
			}
		}
	} else {
		s.noteCommitted(len(created))
		if len(created) > 0 && s.onCommit != nil {
			s.onCommit(created)
		}
	}
	for _, c := range batch {
		if c.then != nil {
			c.then(c.msg, c.created, c.err)
		} else {
			c.done <- struct{}{}
		}
	}
}

// storeBatch runs the batch's transaction and returns the messages it created, in seq order per
// room. On error nothing was committed.
func (s *Store) storeBatch(batch []*appendCall) (created []natter.Message, err error) {
	// Not a caller's context: once requests are taken, the batch commits even if one caller leaves.
	ctx := context.Background()
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	b := batchState{
		insert:   tx.StmtContext(ctx, s.stmts.insertMessage),
		byClient: tx.StmtContext(ctx, s.stmts.messageByClient),
		lastSeq:  tx.StmtContext(ctx, s.stmts.roomLastSeq),
		dirty:    make(map[string]int64, 4),
	}

	// One read of the random source for the whole batch.
	ids := make([]byte, idBytes*len(batch))
	if _, err := rand.Read(ids); err != nil {
		return nil, fmt.Errorf("message ids: %w", err)
	}
	created = make([]natter.Message, 0, len(batch))
	for i, c := range batch {
		if c.ctx.Err() != nil {
			// Its caller has already returned an error; storing it would surprise them.
			c.err = canceled(c.ctx)
			continue
		}
		msg, ok, err := s.storeOne(ctx, &b, c, hex.EncodeToString(ids[i*idBytes:(i+1)*idBytes]))
		if err != nil {
			return nil, err
		}
		if c.err != nil {
			continue
		}
		c.msg, c.created = msg, ok
		if ok {
			created = append(created, msg)
		}
	}
	stmt := tx.StmtContext(ctx, s.stmts.updateRoomSeq)
	for room, seq := range b.dirty {
		if _, err := stmt.ExecContext(ctx, seq, room); err != nil {
			return nil, fmt.Errorf("update %s last_seq: %w", room, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return created, nil
}

// storeOne inserts one request inside the batch's transaction. A failure of the request alone is
// left in c.err; the returned error is for failures that doom the batch.
func (s *Store) storeOne(ctx context.Context, b *batchState, c *appendCall, id string) (natter.Message, bool, error) {
	req := &c.req
	last, ok := s.lastSeq[req.Room]
	if !ok {
		err := b.lastSeq.QueryRowContext(ctx, req.Room).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			c.err = natter.Errorf(natter.ENOTFOUND, "room %q does not exist", req.Room)
			return natter.Message{}, false, nil
		}
		if err != nil {
			return natter.Message{}, false, fmt.Errorf("load %s last_seq: %w", req.Room, err)
		}
		s.lastSeq[req.Room] = last
	}
	msg := natter.Message{
		Room:     req.Room,
		Seq:      last + 1,
		ID:       id,
		ClientID: req.ClientID,
		Author:   req.Author,
		Body:     req.Body,
	}
	ts := toNanos(s.now())
	msg.TS = fromNanos(ts)
	res, err := b.insert.ExecContext(ctx, msg.Room, msg.Seq, msg.ID, msg.ClientID, msg.Author, msg.Body, ts)
	if err != nil {
		return natter.Message{}, false, fmt.Errorf("insert into %s: %w", req.Room, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return natter.Message{}, false, fmt.Errorf("insert into %s: %w", req.Room, err)
	}
	if n == 0 {
		// (room, author, client_id) is taken, by an earlier batch or earlier in this one (the
		// transaction sees its own rows): answer with the original and store nothing.
		orig, err := scanMessage(b.byClient.QueryRowContext(ctx, req.Room, req.Author, req.ClientID))
		if err != nil {
			return natter.Message{}, false, fmt.Errorf("load duplicate in %s: %w", req.Room, err)
		}
		return orig, false, nil
	}
	s.lastSeq[req.Room] = msg.Seq
	b.dirty[req.Room] = msg.Seq
	return msg, true, nil
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanMessage(r rowScanner) (natter.Message, error) {
	var m natter.Message
	var ts int64
	if err := r.Scan(&m.Room, &m.Seq, &m.ID, &m.ClientID, &m.Author, &m.Body, &ts); err != nil {
		return natter.Message{}, err
	}
	m.TS = fromNanos(ts)
	return m, nil
}

// MessagesAfter returns up to limit messages with seq > after, oldest first. A limit of 0 or less
// means natter.DefaultPageSize. ENOTFOUND if the room does not exist.
func (s *Store) MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if limit <= 0 {
		limit = natter.DefaultPageSize
	}
	msgs, err := s.queryMessages(ctx, s.stmts.readMsgsAfter, room, after, limit)
	if err != nil {
		return nil, natter.Internal("sqlite: messages after", err)
	}
	if len(msgs) == 0 {
		// Only now is it worth asking whether the room exists: rooms are never deleted, so a
		// non-empty page proves it.
		if err := s.roomExists(ctx, room); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// MessagesBefore returns the up to limit messages just before seq before, oldest first. A before of
// 0 or less means the end of the log (the newest messages); a limit of 0 or less means
// natter.DefaultPageSize. ENOTFOUND if the room does not exist.
func (s *Store) MessagesBefore(ctx context.Context, room string, before int64, limit int) ([]natter.Message, error) {
	if limit <= 0 {
		limit = natter.DefaultPageSize
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	msgs, err := s.queryMessages(ctx, s.stmts.readMsgsBefore, room, before, limit)
	if err != nil {
		return nil, natter.Internal("sqlite: messages before", err)
	}
	if len(msgs) == 0 {
		if err := s.roomExists(ctx, room); err != nil {
			return nil, err
		}
	}
	// The query walks backwards from before; callers want oldest first.
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, nil
}

func (s *Store) queryMessages(ctx context.Context, stmt *sql.Stmt, room string, seq int64, limit int) ([]natter.Message, error) {
	rows, err := stmt.QueryContext(ctx, room, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	msgs := make([]natter.Message, 0, min(limit, 128))
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

func (s *Store) roomExists(ctx context.Context, room string) error {
	var one int
	err := s.stmts.readRoomExists.QueryRowContext(ctx, room).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", room)
	}
	if err != nil {
		return natter.Internal("sqlite: room exists", err)
	}
	return nil
}
