package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"natter"
)

// BenchmarkAppendParallel measures acknowledged appends per second from about 100 concurrent
// senders with Synchronous FULL, so every acknowledged message is durable. Real clients send a
// random client_id with every message (client.NewClientID); client_id counts up per sender
// instead, which is kinder to any index ordered by key.
func BenchmarkAppendParallel(b *testing.B) {
	b.Run("client_id", func(b *testing.B) { benchmarkAppendParallel(b, counted) })
	b.Run("random_client_id", func(b *testing.B) { benchmarkAppendParallel(b, random) })
	b.Run("no_client_id", func(b *testing.B) { benchmarkAppendParallel(b, none) })
}

type clientIDs int

const (
	none clientIDs = iota
	counted
	random
)

func benchmarkAppendParallel(b *testing.B, ids clientIDs) {
	ctx := context.Background()
	var delivered atomic.Int64
	s := mustOpen(b, Config{OnCommit: func(msgs []natter.Message) { delivered.Add(int64(len(msgs))) }})
	rooms := []string{natter.DefaultRoom, "ops", "dev", "random"}
	for _, r := range rooms[1:] {
		if _, err := s.CreateRoom(ctx, natter.Room{Name: r}); err != nil {
			b.Fatal(err)
		}
	}
	const senders = 100
	b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var nextSender atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		g := nextSender.Add(1)
		req := natter.AppendRequest{
			Room:   rooms[int(g)%len(rooms)],
			Author: "user" + strconv.FormatInt(g, 10),
			Body:   "the quick brown fox jumps over the lazy dog",
		}
		var raw [8]byte
		for i := 0; pb.Next(); i++ {
			switch ids {
			case counted:
				req.ClientID = "c-" + strconv.Itoa(i)
			case random:
				rand.Read(raw[:])
				req.ClientID = "c-" + hex.EncodeToString(raw[:])
			}
			if _, _, err := s.AppendMessage(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// The whole process's CPU, senders included: steadier than msgs/s when other work shares the
	// machine.
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "CPU-us/msg")
	}
	if got := delivered.Load(); got != int64(b.N) {
		b.Fatalf("OnCommit saw %d messages, want %d", got, b.N)
	}
}

func (ids clientIDs) String() string {
	return [...]string{"no_client_id", "client_id", "random_client_id"}[ids]
}

// BenchmarkCommitter measures the committer alone. 100 appends are always in flight through
// AppendMessageAsync, so batches fill as they would with 100 waiting senders but without 100
// goroutines competing for the CPU, into a database that already holds 200,000 messages from 100
// authors with random client_ids. Besides msgs/s it reports the process's CPU per message and
// the bytes it wrote per message (WAL frames, and the checkpoints' copies into the database).
func BenchmarkCommitter(b *testing.B) {
	const prefill = 200_000
	template := filepath.Join(b.TempDir(), "template.db")
	s := mustOpen(b, Config{Path: template})
	pumpAppends(b, s, prefill, random)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for _, ids := range []clientIDs{random, none} {
		b.Run(ids.String(), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "natter.db")
			data, err := os.ReadFile(template)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
			s := mustOpen(b, Config{Path: path})
			b.ResetTimer()
			cpu0, w0 := processCPU(), processWrites()
			pumpAppends(b, s, b.N, ids)
			cpu, w := processCPU()-cpu0, processWrites()-w0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "CPU-us/msg")
			}
			if w > 0 {
				b.ReportMetric(float64(w)/float64(b.N), "written-B/msg")
			}
		})
	}
}

// pumpAppends appends n messages to the lobby from 100 authors, keeping 100 in flight.
func pumpAppends(b *testing.B, s *Store, n int, ids clientIDs) {
	inflight := make(chan struct{}, 100)
	var raw [8]byte
	for i := range n {
		req := natter.AppendRequest{
			Room:   natter.DefaultRoom,
			Author: "user" + strconv.Itoa(i%100),
			Body:   "the quick brown fox jumps over the lazy dog",
		}
		switch ids {
		case counted:
			req.ClientID = "c-" + strconv.Itoa(i/100)
		case random:
			rand.Read(raw[:])
			req.ClientID = "c-" + hex.EncodeToString(raw[:])
		}
		inflight <- struct{}{}
		err := s.AppendMessageAsync(context.Background(), req, func(_ natter.Message, created bool, err error) {
			if err != nil || !created {
				b.Errorf("append: created %v, %v", created, err)
			}
			<-inflight
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for range cap(inflight) {
		inflight <- struct{}{}
	}
}

// BenchmarkSearch measures one search request's worst case on SQLite: a word found nowhere, so
// it reads all natter.SearchScan entries of a room's log (with an edit or a deletion every 50
// messages), and one that stops at the 20th match.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, Config{})
	pumpAppends(b, s, natter.SearchScan+1000, none)
	for seq := int64(1); seq <= natter.SearchScan; seq += 50 {
		req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "user" + strconv.FormatInt((seq-1)%100, 10), Kind: natter.KindEdit, Target: seq, Body: "the quick brown fox, edited"}
		if seq%100 == 0 {
			req.Kind, req.Body = natter.KindDelete, ""
		}
		if _, _, err := s.AppendMessage(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	room, err := s.Room(ctx, natter.DefaultRoom)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, q string }{{"nothing", "zebra"}, {"20_matches", "fox"}} {
		b.Run(c.name, func(b *testing.B) {
			q, err := natter.ParseSearch(c.q)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := processCPU()
			var scanned int
			for b.Loop() {
				res, err := natter.Search(ctx, s, natter.SearchRequest{Room: room.Name, Query: q, Before: room.LastSeq + 1})
				if err != nil {
					b.Fatal(err)
				}
				scanned = res.Scanned
			}
			b.ReportMetric(float64(scanned), "entries/op")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "CPU-us/op")
		})
	}
}
