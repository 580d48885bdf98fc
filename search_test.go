package natter

import (
	"strings"
	"testing"
)

func TestParseSearch(t *testing.T) {
	for _, c := range []struct {
		q     string
		words []string
		from  string
	}{
		{"hello", []string{"hello"}, ""},
		{"  Hello   WORLD ", []string{"hello", "world"}, ""},
		{"from:alice", nil, "alice"},
		{"from:@Alice deploy", []string{"deploy"}, "Alice"},
		{"from: x", []string{"from:", "x"}, ""},
		{"Ünïcode", []string{"ünïcode"}, ""},
	} {
		q, err := ParseSearch(c.q)
		if err != nil || strings.Join(q.Words, "|") != strings.Join(c.words, "|") || q.From != c.from {
			t.Errorf("ParseSearch(%q) = %+v, %v; want words %q, from %q", c.q, q, err, c.words, c.from)
		}
	}
	for _, bad := range []string{"", "   ", "from:a from:b", "\xff", strings.Repeat("é", MaxSearchLen+1), strings.Repeat("a ", MaxSearchWords+1)} {
		if _, err := ParseSearch(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseSearch(%q): %v, want %s", bad, err, EINVALID)
		}
	}
	if _, err := ParseSearch(strings.Repeat("é", MaxSearchLen)); err != nil {
		t.Errorf("a query of %d characters: %v", MaxSearchLen, err)
	}
}

func TestSearchMatches(t *testing.T) {
	q, _ := ParseSearch("from:alice DEPLOY one")
	for _, c := range []struct {
		author, text string
		want         bool
	}{
		{"alice", "Deploy at one", true},
		{"ALICE", "deployed someone", true}, // parts of words match
		{"alice", "deploy at two", false},
		{"bob", "deploy at one", false},
	} {
		if got := q.Matches(c.author, c.text); got != c.want {
			t.Errorf("%+v.Matches(%q, %q) = %v, want %v", q, c.author, c.text, got, c.want)
		}
	}
}
