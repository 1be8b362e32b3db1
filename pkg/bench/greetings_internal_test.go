package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGreetingKey(t *testing.T) {
	for in, want := range map[string]string{"backend-1": "backend-1", "b\xff": `"b\xff"`, "": ""} {
		if got := greetingKey(in); got != want {
			t.Errorf("greetingKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGreetingsSummary(t *testing.T) {
	tests := []struct {
		g    Greetings
		want string
	}{
		{Greetings{}, "none read"},
		{Greetings{"backend-1": 1}, `"backend-1" 1 (100.0%) of 1 connections, warmup included`},
		{Greetings{"b": 10, "a": 10, "c": 20}, `"c" 20 (50.0%), "a" 10 (25.0%), "b" 10 (25.0%) of 40 connections, warmup included`},
		{Greetings{"tab\there": 1, "": 2}, `"" 2 (66.7%), "tab\there" 1 (33.3%) of 3 connections, warmup included`},
	}
	for _, tt := range tests {
		if got := tt.g.summary(); got != tt.want {
			t.Errorf("%v.summary() = %q, want %q", tt.g, got, tt.want)
		}
	}
	// Past maxShownGreetings, the rest are counted, not named.
	many := Greetings{}
	for i := range maxShownGreetings + 5 {
		many[fmt.Sprintf("pod-%03d", i)] = 1
	}
	if s := many.summary(); strings.Count(s, `"pod-`) != maxShownGreetings || !strings.Contains(s, "and 5 more (the JSON has them all)") {
		t.Errorf("summary of %d greetings: %s", len(many), s)
	}
}

// FuzzGreetingsSummary: whatever the greetings, the summary is one line
// naming each, and the JSON object holds every count.
func FuzzGreetingsSummary(f *testing.F) {
	f.Add("backend-1", "backend-2", int64(3), int64(4))
	f.Add("", "\n\x00", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, a, b string, na, nb int64) {
		if na < 0 || nb < 0 || na > 1<<40 || nb > 1<<40 || !utf8.ValidString(a) || !utf8.ValidString(b) {
			t.Skip() // counted greetings are valid UTF-8 (greetingKey)
		}
		g := Greetings{a: na, b: nb}
		s := g.summary()
		if strings.ContainsAny(s, "\n\r") {
			t.Fatalf("summary %q is more than one line", s)
		}
		if na+nb > 0 && len(g.Sorted()) != len(g) {
			t.Fatalf("Sorted lost greetings: %v", g.Sorted())
		}
		out, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		var back Greetings
		if err := json.Unmarshal(out, &back); err != nil || len(back) != len(g) {
			t.Fatalf("JSON %s does not round-trip: %v, %v", out, back, err)
		}
		for k, v := range g {
			if back[k] != v {
				t.Fatalf("JSON %s: %q = %d, want %d", out, k, back[k], v)
			}
		}
	})
}
