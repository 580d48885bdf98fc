package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBenchProcs runs `natter bench ingest` against a server: by default the load generator
// runs on one P, --procs sets another count, the figure is in the JSON, and GOMAXPROCS is
// restored afterwards.
func TestBenchProcs(t *testing.T) {
	url := openNatter(t)
	before := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "1"},
		{[]string{"--procs", "2"}, "2"},
	} {
		out := filepath.Join(t.TempDir(), "res.json")
		args := append([]string{"ingest", "--url", url, "--senders", "4", "--messages", "40", "--quiet", "--json", out}, tc.args...)
		var stdout, stderr bytes.Buffer
		if err := runBench(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("natter bench %q: %v (stderr %s)", args, err, stderr.String())
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Params map[string]string `json:"params"`
			Acked  int               `json:"acked"`
		}
		if err := json.Unmarshal(data, &res); err != nil {
			t.Fatal(err)
		}
		if res.Params["procs"] != tc.want || res.Acked != 40 {
			t.Errorf("%q: procs %q, acked %d; want %s, 40", tc.args, res.Params["procs"], res.Acked, tc.want)
		}
		if got := runtime.GOMAXPROCS(0); got != before {
			t.Fatalf("GOMAXPROCS is %d after the run, want %d back", got, before)
		}
	}
	var stdout, stderr bytes.Buffer
	err := runBench(t.Context(), []string{"ingest", "--url", url, "--procs", "-1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--procs must be positive") {
		t.Errorf("--procs -1: err %v, want a clear refusal", err)
	}
}
