package bench

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Histogram layout: log-linear buckets over microseconds, 32 sub-buckets per power of two, so a
// recorded value is reported within about 3 % (1 µs below 32 µs). Values of 2^40 µs (12 days) and
// more land in the last bucket. One histogram is 4.6 KB of counters, small enough to keep one per
// timeline bucket.
const (
	histSubBits  = 5
	histSubCount = 1 << histSubBits
	histMaxBits  = 40
	histBuckets  = (histMaxBits - histSubBits + 1) * histSubCount
)

// histogram counts latencies. It is not safe for concurrent use; recorders shard it.
type histogram struct {
	counts [histBuckets]uint32
	n      uint64
	sum    float64 // microseconds
	max    int64   // microseconds, exact
}

func histIndex(us int64) int {
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	if v < histSubCount {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1
	idx := (e+1)*histSubCount + int(v>>e) - histSubCount
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// histValue returns the middle of bucket idx, in microseconds.
func histValue(idx int) int64 {
	if idx < histSubCount {
		return int64(idx)
	}
	e := idx/histSubCount - 1
	m := int64(idx%histSubCount + histSubCount)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) record(us int64) {
	h.counts[histIndex(us)]++
	h.n++
	h.sum += float64(us)
	if us > h.max {
		h.max = us
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1) in microseconds; the exact maximum for q == 1.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// LatencyStats summarises a latency distribution, in milliseconds.
type LatencyStats struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func usToMS(us int64) float64 { return float64(us) / 1000 }

func (h *histogram) stats() LatencyStats {
	if h.n == 0 {
		return LatencyStats{}
	}
	return LatencyStats{
		Count:  h.n,
		MeanMS: h.sum / float64(h.n) / 1000,
		P50MS:  usToMS(h.quantile(0.50)),
		P90MS:  usToMS(h.quantile(0.90)),
		P99MS:  usToMS(h.quantile(0.99)),
		P999MS: usToMS(h.quantile(0.999)),
		MaxMS:  usToMS(h.max),
	}
}

// TimelineBucket is the latency of the messages sent during one bucket of the run.
type TimelineBucket struct {
	StartS float64 `json:"start_s"` // seconds since the first send
	Count  uint64  `json:"count"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// recorderShards spreads concurrent recorders over independent locks.
const recorderShards = 16

// recorder collects latencies from many goroutines into a timeline of histograms, keyed by the
// time the message was sent relative to t0.
type recorder struct {
	// t0 is unix nanoseconds. Atomic: subscribers read it, and what orders their reads after
	// start is only the publisher's bytes passing through the server.
	t0     atomic.Int64
	bucket time.Duration
	shards [recorderShards]recorderShard
}

type recorderShard struct {
	mu       sync.Mutex
	timeline []*histogram
	lastRecv int64 // unix nanoseconds of the latest record
	_        [40]byte
}

func newRecorder(bucket time.Duration) *recorder {
	return &recorder{bucket: bucket}
}

// start sets the time origin of the timeline.
func (r *recorder) start(t0 time.Time) { r.t0.Store(t0.UnixNano()) }

// record adds one latency measured at recvNanos for a message sent at sentNanos. shard is any
// number that spreads callers (a subscriber's index).
func (r *recorder) record(shard int, sentNanos, recvNanos int64) {
	b := int((sentNanos - r.t0.Load()) / int64(r.bucket))
	if b < 0 {
		b = 0
	}
	s := &r.shards[shard%recorderShards]
	s.mu.Lock()
	for len(s.timeline) <= b {
		s.timeline = append(s.timeline, nil)
	}
	h := s.timeline[b]
	if h == nil {
		h = new(histogram)
		s.timeline[b] = h
	}
	h.record((recvNanos - sentNanos) / 1000)
	if recvNanos > s.lastRecv {
		s.lastRecv = recvNanos
	}
	s.mu.Unlock()
}

// lastReceive returns when the latest latency was recorded (zero if none).
func (r *recorder) lastReceive() int64 {
	var last int64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		last = max(last, s.lastRecv)
		s.mu.Unlock()
	}
	return last
}

// result merges the shards into the overall distribution and the timeline.
func (r *recorder) result() (*histogram, []TimelineBucket) {
	total := new(histogram)
	var merged []*histogram
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for b, h := range s.timeline {
			if h == nil {
				continue
			}
			for len(merged) <= b {
				merged = append(merged, nil)
			}
			if merged[b] == nil {
				merged[b] = new(histogram)
			}
			merged[b].merge(h)
			total.merge(h)
		}
		s.mu.Unlock()
	}
	timeline := make([]TimelineBucket, 0, len(merged))
	for b, h := range merged {
		if h == nil {
			continue
		}
		timeline = append(timeline, TimelineBucket{
			StartS: (time.Duration(b) * r.bucket).Seconds(),
			Count:  h.n,
			P50MS:  usToMS(h.quantile(0.5)),
			P99MS:  usToMS(h.quantile(0.99)),
			MaxMS:  usToMS(h.max),
		})
	}
	return total, timeline
}
