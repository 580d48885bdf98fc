package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the browser's zone below, whatever the machine has installed

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	chat "natter"
	"natter/app"
	"natter/sqlite"
)

// daysZone is the browser's time zone in TestDaySeparators: far from UTC, so that a day in the
// browser is not the day the store writes down.
const daysZone = "Pacific/Auckland"

// daySep is one separator as the page shows it, with the seq of the message it stands before.
type daySep struct {
	Label   string `json:"label"`
	Aria    string `json:"aria"`
	Role    string `json:"role"`
	HasSeq  bool   `json:"hasSeq"`
	NextSeq int64  `json:"nextSeq"`
}

// A room whose history spans four days of the browser's time zone: separators name each day once,
// before its first message shown, also after older history is loaded above (once at a day's
// boundary, once in the middle of a day), and a live message on a new day gets its own.
func TestDaySeparators(t *testing.T) {
	loc, err := time.LoadLocation(daysZone)
	if err != nil {
		t.Fatal(err)
	}
	// "Today" must mean the same day from here to the end of the test.
	now := time.Now().In(loc)
	if midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, loc); midnight.Sub(now) < 2*time.Minute {
		time.Sleep(midnight.Sub(now) + time.Second)
		now = time.Now().In(loc)
	}
	day := func(ago int, hour, min int) time.Time {
		return time.Date(now.Year(), now.Month(), now.Day()-ago, hour, min, 0, 0, loc)
	}

	// The history is written by the store itself, with its clock set to each message's time,
	// before natter starts on the same data dir. Seqs 1..50 three days ago, 51..120 two days
	// ago (120 by ann at 23:59), 121..220 yesterday (121 by ann at 00:01: two minutes after
	// 120, which a new day must not group with it).
	dir := t.TempDir()
	var clock atomic.Int64 // the store reads it from its own goroutines (the committer, the session sweeper)
	setClock := func(at time.Time) { clock.Store(at.UnixNano()) }
	setClock(day(3, 9, 0))
	store, err := sqlite.Open(context.Background(), sqlite.Config{
		Path: filepath.Join(dir, "natter.db"), Synchronous: "NORMAL",
		Now: func() time.Time { return time.Unix(0, clock.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateRoom(context.Background(), chat.Room{Name: "days", Title: "Days"}); err != nil {
		t.Fatal(err)
	}
	authors := []string{"ann", "bob", "bob", "cy"}
	for seq := 1; seq <= 220; seq++ {
		author := authors[seq%len(authors)]
		switch {
		case seq <= 50:
			setClock(day(3, 10, seq))
		case seq < 120:
			setClock(day(2, 10, seq-50))
		case seq == 120:
			setClock(day(2, 23, 59))
			author = "ann"
		case seq == 121:
			setClock(day(1, 0, 1))
			author = "ann"
		default:
			setClock(day(1, 1, seq-121))
		}
		m, _, err := store.AppendMessage(context.Background(), chat.AppendRequest{
			Room: "days", Author: author, Body: fmt.Sprintf("message %d", seq),
		})
		if err != nil || m.Seq != int64(seq) {
			t.Fatalf("append %d: seq %d, %v", seq, m.Seq, err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	srv := startNatter(t, func(c *app.Config) { c.DataDir = dir })
	browser := newBrowser(t)
	p := newPage(t, browser, "me")
	p.do("put the browser in "+daysZone+", en-GB", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: daysZone}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en-GB"})
		return err
	}))
	p.navigate(srv.url + "/rooms/days")
	p.signIn(srv.url, "me", "", "guest")
	p.waitLive("ws")
	p.waitSeqs(121, 220)

	date := func(ago int) string { return day(ago, 12, 0).Format("Mon 2 Jan 2006") }
	type want struct {
		label string
		seq   int64
	}
	check := func(when string, wants ...want) {
		t.Helper()
		got := evalJS[[]daySep](p, `[...document.querySelectorAll('#messages > :not([data-seq])')].map(e => ({
			label: e.textContent, aria: e.getAttribute('aria-label') || '', role: e.getAttribute('role') || '',
			hasSeq: e.matches('[data-seq], :has([data-seq])'),
			nextSeq: Number(e.nextElementSibling && e.nextElementSibling.dataset.seq),
		}))`)
		var labels, wantLabels []string
		for _, s := range got {
			// en-GB writes "Wed, 25 Nov 2026" or "Wed 25 Nov 2026", by ICU version.
			labels = append(labels, fmt.Sprintf("%s@%d", strings.ReplaceAll(s.Label, ",", ""), s.NextSeq))
		}
		for _, w := range wants {
			wantLabels = append(wantLabels, fmt.Sprintf("%s@%d", w.label, w.seq))
		}
		if !slices.Equal(labels, wantLabels) {
			t.Fatalf("%s: separators (label@seq of the next message) = %v, want %v", when, labels, wantLabels)
		}
		for _, s := range got {
			if s.Role != "separator" || s.Aria != s.Label || s.HasSeq {
				t.Fatalf("%s: separator %+v: want role=separator, aria-label = its text, no data-seq", when, s)
			}
		}
	}
	scrollUp := func() {
		t.Helper()
		p.do("scroll to the top", evalVoid(`document.getElementById('scroller').scrollTop = 0`))
	}

	check("first page (yesterday only)", want{"Yesterday", 121})
	p.screenshot("days-desktop-light")

	// Two live messages from today: one new separator before the first, none before the second.
	bob := srv.guest("bob")
	bob.send("days", "live today 1")
	bob.send("days", "live today 2")
	p.waitSeqs(121, 222)
	check("after live messages from today", want{"Yesterday", 121}, want{"Today", 221})

	// Older history ending exactly where yesterday begins.
	scrollUp()
	p.waitSeqs(21, 222)
	check("after loading 21..120", want{date(3), 21}, want{date(2), 51}, want{"Yesterday", 121}, want{"Today", 221})

	// Older history from the middle of a day: its separator moves up to the first message.
	scrollUp()
	p.waitSeqs(1, 222)
	p.waitJS("the start of the room", `!document.getElementById('log-start').hidden`)
	check("after loading 1..20", want{date(3), 1}, want{date(2), 51}, want{"Yesterday", 121}, want{"Today", 221})
	if n := evalJS[int](p, `document.querySelectorAll('[data-seq][data-author]').length`); n != 222 {
		t.Fatalf("%d [data-seq][data-author] elements, want 222 (one per message)", n)
	}

	// A new day shows the author again, even two minutes after their last message.
	if evalJS[bool](p, `document.getElementById('m121').classList.contains('cont')`) {
		t.Fatalf("seq 121 (ann, 00:01) is grouped with seq 120 (ann, 23:59 the day before)")
	}

	p.do("scroll to yesterday", evalVoid(`document.getElementById('m121').scrollIntoView({block: 'center'})`))
	p.colorScheme("dark")
	p.screenshot("days-desktop-dark")
	p.viewport(390, 844, true)
	p.do("scroll to yesterday", evalVoid(`document.getElementById('m121').scrollIntoView({block: 'center'})`))
	p.screenshot("days-phone-dark")
	p.colorScheme("light")
	p.screenshot("days-phone-light")
}
