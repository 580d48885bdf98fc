package sqlite

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"natter"
)

// idBytes is the size of a message id's randomness: 128 bits never collide in practice.
const idBytes = 16

// appendCall is one append waiting for the committer. The committer fills in the result, then
// either calls then (AppendMessageAsync) or signals done (AppendMessage, FindByClientID; buffered,
// so it never blocks on a caller that gave up).
type appendCall struct {
	ctx     context.Context
	req     natter.AppendRequest
	msg     natter.Message
	created bool
	err     error
	key     int64 // clientKey of req, if it has a client_id; committer only
	// lookupOnly marks a FindByClientID: the committer answers it like a repeat (msg set if the
	// key is stored) and never stores it.
	lookupOnly bool
	// drop marks a DeleteRoom of req.Room by req.Author (purge.go): the committer carries it out
	// on its own, between two batches.
	drop bool
	done chan struct{}
	then func(natter.Message, bool, error)
}

// AppendMessage stores req at the end of its room's log. It returns once the message is committed
// (and synced, with Synchronous FULL) and OnCommit has seen it.
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
// done runs on the goroutine that calls OnCommit, after the commit (and its sync) and after
// OnCommit, and must not block. If
// AppendMessageAsync returns an error, done is never called. It implements natter.AsyncAppender.
func (s *Store) AppendMessageAsync(ctx context.Context, req natter.AppendRequest, done func(msg natter.Message, created bool, err error)) error {
	if err := natter.ValidateAppend(req, s.maxBody); err != nil {
		return err
	}
	// Not pooled: nothing tells when done's caller is finished with the call.
	return s.enqueue(ctx, &appendCall{ctx: ctx, req: req, then: done})
}

var _ natter.AsyncAppender = (*Store)(nil)

// FindByClientID returns the message stored for req's (Room, Author, ClientID), storing nothing;
// Body is ignored. The key index belongs to the committer, so the lookup queues behind every
// append queued before it and sees them all. An empty ClientID finds nothing. ENOTFOUND if the
// room does not exist, EUNAVAILABLE if the store is closed or ctx ends first.
func (s *Store) FindByClientID(ctx context.Context, req natter.AppendRequest) (natter.Message, bool, error) {
	if req.ClientID == "" {
		return natter.Message{}, false, nil
	}
	c := s.calls.Get().(*appendCall)
	c.ctx, c.req, c.lookupOnly = ctx, req, true
	if err := s.enqueue(ctx, c); err != nil {
		s.putCall(c)
		return natter.Message{}, false, err
	}
	select {
	case <-c.done:
		msg, err := c.msg, c.err
		s.putCall(c)
		if err != nil {
			return natter.Message{}, false, err
		}
		return msg, msg.Seq != 0, nil
	case <-ctx.Done():
		return natter.Message{}, false, canceled(ctx)
	}
}

// enqueue hands c to the committer. The channel keeps the order of one goroutine's appends.
func (s *Store) enqueue(ctx context.Context, c *appendCall) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return natter.Errorf(natter.EUNAVAILABLE, "the store is closed")
	}
	if err := s.storeFailed(); err != nil {
		return err
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
	if s.syncq != nil {
		defer close(s.syncq)
	}
	batch := make([]*appendCall, 0, s.maxBatch)
	var held *appendCall // a deletion topUp met: it goes after the batch before it
	for {
		c := held
		held = nil
		if c == nil {
			var ok bool
			if c, ok = <-s.appends; !ok {
				return
			}
		}
		if c.drop {
			s.dropRoom(c)
			continue
		}
		batch, held = s.topUp(append(batch[:0], c))
		// With Synchronous FULL, a batch is synced by the committer itself, or, when appends
		// queue faster than one batch takes (a full batch) or an earlier batch is still being
		// synced, handed to the syncer so that the next commit overlaps the sync. Handing off
		// costs a goroutine switch and makes smaller batches, so it is kept for a backlog.
		pipelined := s.syncq != nil && (len(batch) == s.maxBatch || len(s.syncSlots) > 0)
		if pipelined {
			// At most syncDepth batches committed and not yet answered: meanwhile the next
			// batch grows.
			s.syncSlots <- struct{}{}
			if held == nil {
				batch, held = s.topUp(batch)
			}
		}
		s.finishCheckpoint()
		s.commitBatch(batch, pipelined)
		if pipelined {
			batch = make([]*appendCall, 0, s.maxBatch) // the syncer has the last one
		} else {
			clear(batch) // drop references so finished calls can be collected
		}
	}
}

// topUp adds what is queued to batch, up to maxBatch, without waiting. It stops at a deletion
// of a room, which it returns apart: the deletion goes after the batch.
func (s *Store) topUp(batch []*appendCall) ([]*appendCall, *appendCall) {
	for len(batch) < s.maxBatch {
		select {
		case c, ok := <-s.appends:
			if !ok {
				return batch, nil // Close: commit this batch; commitLoop's next receive ends it
			}
			if c.drop {
				return batch, c
			}
			batch = append(batch, c)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// batchState is the committer's scratch space for one batch.
type batchState struct {
	insert   *sql.Stmt
	byClient *sql.Stmt
	lastSeq  *sql.Stmt
	dirty    map[string]int64 // rooms whose last_seq moved, and where to
}

// commitBatch stores batch in one transaction, then (after the WAL syncer, with Synchronous
// FULL) reports the new messages to OnCommit and answers every caller. A request that fails on its
// own (unknown room, caller gone) fails alone; anything unexpected fails the whole batch, which
// then stores nothing.
func (s *Store) commitBatch(batch []*appendCall, pipelined bool) {
	job := syncJob{batch: batch}
	if ferr := s.storeFailed(); ferr != nil {
		for _, c := range batch {
			c.err = ferr
		}
		s.finish(job, pipelined)
		return
	}
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
		job.created = created
		if s.wal != nil { // what the batch makes visible once synced
			for room, seq := range s.scratch.rooms {
				job.rooms = append(job.rooms, roomSeq{room, seq})
			}
		}
	}
	s.finish(job, pipelined)
}

// finish hands a batch to the syncer (pipelined), or syncs the WAL if there is a syncer and
// finishes the batch at once.
func (s *Store) finish(j syncJob, pipelined bool) {
	if pipelined {
		s.syncq <- j
		return
	}
	if s.wal != nil && len(j.created) > 0 && s.storeFailed() == nil {
		if err := s.wal.sync(); err != nil {
			s.failStore(err)
		}
	}
	s.finishBatch(&j)
}

// answer tells every caller of batch its result.
func answer(batch []*appendCall) {
	for _, c := range batch {
		if c.then != nil {
			c.then(c.msg, c.created, c.err)
		} else {
			c.done <- struct{}{}
		}
	}
}

// batchScratch is the committer's reusable working space, so that a batch allocates little.
type batchScratch struct {
	keyed   []*appendCall    // requests with a client_id, in queue order
	newKeys map[int64]int    // key -> index in created of the batch's first new message with it
	rooms   map[string]int64 // rooms whose last_seq this batch moves, and where to
	seqs    []int64
	probe   []int64
	entries []keyEntry
	args    []any
	ids     []byte
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
	sc := &s.scratch
	sc.keyed = sc.keyed[:0]
	clear(sc.rooms)
	clear(sc.newKeys)

	// Some of the idempotency index's backlog (keys.go). It only moves what memory already holds,
	// and memory forgets nothing before the commit, so this could go anywhere in the transaction.
	plan := s.planSweep()
	if err := s.runSweep(ctx, tx, plan); err != nil {
		return nil, err
	}

	// Requests that fail alone, then the keys of the rest.
	for _, c := range batch {
		if c.ctx.Err() != nil {
			// Its caller has already returned an error; storing it would surprise them.
			c.err = canceled(c.ctx)
			continue
		}
		if err := s.loadLastSeq(ctx, tx, c); err != nil {
			return nil, err
		}
		if c.err == nil && c.req.ClientID != "" {
			c.key = s.keyOf(c.req.Room, c.req.Author, c.req.ClientID)
			sc.keyed = append(sc.keyed, c)
		}
	}
	if err := s.findStored(ctx, tx, sc.keyed); err != nil {
		return nil, err
	}

	// One read of the random source for the whole batch.
	sc.ids = slices.Grow(sc.ids[:0], idBytes*len(batch))[:idBytes*len(batch)]
	if _, err := rand.Read(sc.ids); err != nil {
		return nil, fmt.Errorf("message ids: %w", err)
	}
	created = make([]natter.Message, 0, len(batch))
	now := toNanos(s.now()) // one reading for the batch: its messages are stored together
	for i, c := range batch {
		if c.err != nil || c.msg.Seq != 0 {
			continue // failed alone, or stored before (findStored answered it)
		}
		req := &c.req
		if req.ClientID != "" {
			if j, ok := s.createdInBatch(created, c); ok {
				c.msg = created[j] // a repeat within the batch gets the first one's message
				continue
			}
		}
		if c.lookupOnly {
			continue // not stored (at least not before it in the queue): found nothing
		}
		seq := s.lastSeq[req.Room] + 1
		s.lastSeq[req.Room] = seq
		s.track(req.Room, seq-1)
		sc.rooms[req.Room] = seq
		msg := natter.Message{
			Room:     req.Room,
			Seq:      seq,
			ID:       hex.EncodeToString(sc.ids[i*idBytes : (i+1)*idBytes]),
			ClientID: req.ClientID,
			Author:   req.Author,
			Body:     req.Body,
			TS:       fromNanos(now),
			Kind:     req.Kind,
			Target:   req.Target,
			ReplyTo:  req.ReplyTo,
		}
		if req.ClientID != "" {
			if _, taken := sc.newKeys[c.key]; !taken {
				sc.newKeys[c.key] = len(created)
			}
		}
		created = append(created, msg)
		c.msg, c.created = msg, true
	}

	args := sc.args[:0]
	plain := 0
	for i := range created {
		m := &created[i]
		if m.Kind != "" || m.ReplyTo != 0 {
			continue // below: edits, deletions and replies are few
		}
		args = append(args, m.Room, m.Seq, m.ID, m.ClientID, m.Author, m.Body, now)
		plain++
	}
	sc.args = args
	if err := execRows(ctx, tx, &s.stmts.insertMessages, plain, 7, args); err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	if plain < len(created) {
		insert, count := tx.StmtContext(ctx, s.stmts.insertRef), tx.StmtContext(ctx, s.stmts.countChange)
		for i := range created {
			m := &created[i]
			if m.Kind == "" && m.ReplyTo == 0 {
				continue
			}
			if _, err := insert.ExecContext(ctx, m.Room, m.Seq, m.ID, m.ClientID, m.Author, m.Body, now, m.Kind, m.Target, m.ReplyTo); err != nil {
				return nil, fmt.Errorf("insert %s: %w", cmp.Or(m.Kind, "reply"), err)
			}
			if m.Kind == "" {
				continue
			}
			if _, err := count.ExecContext(ctx, m.Room); err != nil {
				return nil, fmt.Errorf("count %s: %w", m.Kind, err)
			}
			if err := s.applyChange(ctx, tx, m); err != nil {
				return nil, err
			}
		}
	}
	stmt := tx.StmtContext(ctx, s.stmts.updateRoomSeq)
	for room, seq := range sc.rooms {
		if _, err := stmt.ExecContext(ctx, seq, room); err != nil {
			return nil, fmt.Errorf("update %s last_seq: %w", room, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}

	// Committed: only now may the memory say so.
	s.sweepCommitted(plan)
	for _, c := range sc.keyed {
		if c.created {
			s.keys.add(c.key, c.msg.Room, c.msg.Seq)
		}
	}
	for room, seq := range sc.rooms {
		s.sweep.dirty[room] = seq
	}
	s.sweep.debt += len(created)
	return created, nil
}

// applyChange carries out, in m's transaction, what a change m does beyond its entry. A deletion
// erases the message it deletes and that message's edits (their place and everything but the
// text stay: natter.Message.Deleted), and unpins it; an edit of a message already deleted (an
// edit racing the deletion) is erased as it is stored. A pin or an unpin updates room_pins.
func (s *Store) applyChange(ctx context.Context, tx *sql.Tx, m *natter.Message) error {
	exec := func(what string, stmt *sql.Stmt, args ...any) error {
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	switch m.Kind {
	case natter.KindDelete:
		if err := exec("erase message", s.stmts.eraseMessage, m.Room, m.Target); err != nil {
			return err
		}
		if err := exec("erase edits", s.stmts.eraseEdits, m.Room, m.Target); err != nil {
			return err
		}
		return exec("unpin a deleted message", s.stmts.deletePin, m.Room, m.Target)
	case natter.KindEdit:
		return exec("erase a late edit", s.stmts.eraseLateEdit, m.Room, m.Seq, m.Target)
	case natter.KindPin:
		return exec("pin", s.stmts.upsertPin, m.Room, m.Target, m.Author, toNanos(m.TS))
	case natter.KindUnpin:
		return exec("unpin", s.stmts.deletePin, m.Room, m.Target)
	}
	return nil
}

// Pins lists room's pinned messages, the latest pinned first (natter.MessageStore).
func (s *Store) Pins(ctx context.Context, room string) ([]natter.Pin, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	rows, err := s.stmts.readPins.QueryContext(ctx, room)
	if err != nil {
		return nil, natter.Internal("sqlite: pins", err)
	}
	defer rows.Close()
	pins := []natter.Pin{}
	for rows.Next() {
		var p natter.Pin
		var at int64
		if err := rows.Scan(&p.Seq, &p.By, &at); err != nil {
			return nil, natter.Internal("sqlite: pins", err)
		}
		p.At = fromNanos(at)
		pins = append(pins, p)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: pins", err)
	}
	return pins, nil
}

// loadLastSeq makes sure s.lastSeq knows c's room, or fails c alone with ENOTFOUND. The returned
// error dooms the batch.
func (s *Store) loadLastSeq(ctx context.Context, tx *sql.Tx, c *appendCall) error {
	room := c.req.Room
	if _, ok := s.lastSeq[room]; ok {
		return nil
	}
	var last int64
	err := tx.StmtContext(ctx, s.stmts.roomLastSeq).QueryRowContext(ctx, room).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		c.err = natter.Errorf(natter.ENOTFOUND, "room %q does not exist", room)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load %s last_seq: %w", room, err)
	}
	s.lastSeq[room] = last
	return nil
}

// sameKey reports whether m was stored by a request with req's full idempotency key.
func sameKey(m *natter.Message, req *natter.AppendRequest) bool {
	return m.Room == req.Room && m.Author == req.Author && m.ClientID == req.ClientID
}

// createdInBatch finds a message this batch has already created with c's full key.
func (s *Store) createdInBatch(created []natter.Message, c *appendCall) (int, bool) {
	j, ok := s.scratch.newKeys[c.key]
	if !ok {
		return 0, false
	}
	// The first with this hash, or failing that (another full key, same hash) any later one.
	for ; j < len(created); j++ {
		if sameKey(&created[j], &c.req) {
			return j, true
		}
	}
	return 0, false
}

// findStored answers, with the original message (c.msg set, c.created false), every keyed request
// whose full key an earlier batch stored: from recentKeys, then from client_keys for the rest.
func (s *Store) findStored(ctx context.Context, tx *sql.Tx, keyed []*appendCall) error {
	sc := &s.scratch
	sc.probe = sc.probe[:0]
	var at *sql.Stmt
	for _, c := range keyed {
		sc.seqs = s.keys.lookup(c.key, c.req.Room, sc.seqs[:0])
		for _, seq := range sc.seqs {
			if at == nil {
				at = tx.StmtContext(ctx, s.stmts.messageAt)
			}
			m, err := scanMessage(at.QueryRowContext(ctx, c.req.Room, seq))
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("load %s message %d by client_id: %w", c.req.Room, seq, err)
			}
			if err == nil && sameKey(&m, &c.req) {
				c.msg = m
				break
			}
		}
		if c.msg.Seq == 0 {
			if s.mayBeIndexed(c.key) {
				sc.probe = append(sc.probe, c.key)
			} else {
				s.probesSkipped++
			}
		}
	}
	if len(sc.probe) == 0 {
		return nil
	}
	slices.Sort(sc.probe)
	sc.probe = slices.Compact(sc.probe)
	for rest := sc.probe; len(rest) > 0; {
		n := chunkRows(len(rest))
		stmt := s.stmts.probeKeys.forRows(n)
		args := sc.args[:0]
		for _, k := range rest[:n] {
			args = append(args, k)
		}
		sc.args = args
		if err := s.scanProbe(ctx, tx.StmtContext(ctx, stmt), args, keyed); err != nil {
			return fmt.Errorf("look up client_ids: %w", err)
		}
		rest = rest[n:]
	}
	return nil
}

// scanProbe runs one client_keys lookup and answers the requests whose full key it finds.
func (s *Store) scanProbe(ctx context.Context, stmt *sql.Stmt, args []any, keyed []*appendCall) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, ts int64
		var m natter.Message
		if err := rows.Scan(&key, &m.Room, &m.Seq, &m.ID, &m.ClientID, &m.Author, &m.Body, &ts, &m.Kind, &m.Target, &m.ReplyTo); err != nil {
			return err
		}
		m.TS = fromNanos(ts)
		m.MarkDeleted()
		for _, c := range keyed {
			if c.key == key && c.msg.Seq == 0 && sameKey(&m, &c.req) {
				c.msg = m
			}
		}
	}
	return rows.Err()
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanMessage(r rowScanner) (natter.Message, error) {
	var m natter.Message
	var ts int64
	if err := r.Scan(&m.Room, &m.Seq, &m.ID, &m.ClientID, &m.Author, &m.Body, &ts, &m.Kind, &m.Target, &m.ReplyTo); err != nil {
		return natter.Message{}, err
	}
	m.TS = fromNanos(ts)
	m.MarkDeleted()
	return m, nil
}

// MessagesAfter returns up to limit messages with seq > after, oldest first. A limit of 0 or less
// means natter.DefaultPageSize. ENOTFOUND if the room does not exist.
func (s *Store) MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if limit <= 0 {
		limit = natter.DefaultPageSize
	}
	rows, err := s.stmts.readMsgsAfter.QueryContext(ctx, room, after, s.visibleSeq(room), limit)
	msgs, err := scanMessages(rows, err, limit)
	if err != nil {
		return nil, natter.Internal("sqlite: messages after", err)
	}
	if len(msgs) == 0 || s.isDeleted(room) {
		// Only now is it worth asking whether the room exists: a deleted room's messages are
		// gone or known to be going (purge.go), so a non-empty page of another proves it.
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
	if v := s.visibleSeq(room); v < before {
		before = v + 1 // later ones are committed but not yet synced
	}
	rows, err := s.stmts.readMsgsBefore.QueryContext(ctx, room, before, limit)
	msgs, err := scanMessages(rows, err, limit)
	if err != nil {
		return nil, natter.Internal("sqlite: messages before", err)
	}
	if len(msgs) == 0 || s.isDeleted(room) {
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

// scanMessages reads up to limit messages from a query's rows.
func scanMessages(rows *sql.Rows, err error, limit int) ([]natter.Message, error) {
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
