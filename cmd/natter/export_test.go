package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"natter"
)

// TestExportCommand: natter export writes the room's whole log as JSON Lines, one entry per line
// in seq order (changes included, each as the API gives it), across pages of the server's reads,
// and resumes after a seq; bad flags are refused before anything is written.
func TestExportCommand(t *testing.T) {
	url := openNatter(t)
	ctx := t.Context()
	ann := accounts(t, url, "ann")
	const n = 1234 // past one page of 1,000
	for i := range n {
		if _, err := ann.Send(ctx, "lobby", fmt.Sprint("message ", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ann.Edit(ctx, "lobby", 1, "message one"); err != nil {
		t.Fatal(err)
	}
	export := func(args ...string) ([]natter.Message, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runExport(ctx, append([]string{"--url", url, "--name", "sam"}, args...), &out, &errOut); err != nil {
			t.Fatalf("natter export %q: %v (stderr %s)", args, err, errOut.String())
		}
		var msgs []natter.Message
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var m natter.Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			msgs = append(msgs, m)
		}
		return msgs, errOut.String()
	}
	all, summary := export()
	if len(all) != n+1 || !strings.Contains(summary, fmt.Sprintf("%d entries of room lobby", n+1)) {
		t.Fatalf("exported %d entries (%q), want %d", len(all), summary, n+1)
	}
	for i, m := range all {
		if m.Seq != int64(i+1) || m.Room != "lobby" || m.Author != "ann" {
			t.Fatalf("line %d: %+v", i+1, m)
		}
	}
	if last := all[n]; last.Kind != natter.KindEdit || last.Target != 1 || last.Body != "message one" {
		t.Fatalf("the edit's line: %+v", last)
	}
	rest, _ := export("--after", "1200")
	if len(rest) != n+1-1200 || rest[0].Seq != 1201 {
		t.Fatalf("--after 1200 exported %d entries from %+v", len(rest), rest[0])
	}
	for _, bad := range [][]string{{"--after", "-1"}, {"extra"}} {
		var out bytes.Buffer
		if err := runExport(ctx, append([]string{"--url", url, "--name", "sam"}, bad...), &out, &bytes.Buffer{}); err == nil || out.Len() != 0 {
			t.Fatalf("natter export %q: %v, wrote %d bytes", bad, err, out.Len())
		}
	}
	var out bytes.Buffer
	if err := runExport(ctx, []string{"--url", url, "--name", "sam", "--room", "nowhere"}, &out, &bytes.Buffer{}); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("exporting no room: %v", err)
	}
}
