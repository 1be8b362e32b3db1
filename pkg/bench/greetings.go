package bench

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Greetings counts connections by the greeting line the server wrote
// first. It marshals to JSON as an object: {"backend-1": 10, ...}.
type Greetings map[string]int64

// GreetingCount is one greeting and how many connections read it.
type GreetingCount struct {
	Greeting string
	Conns    int64
}

// Sorted returns the counts, the most connections first, then by
// greeting.
func (g Greetings) Sorted() []GreetingCount {
	list := make([]GreetingCount, 0, len(g))
	for _, k := range slices.Sorted(maps.Keys(g)) {
		list = append(list, GreetingCount{k, g[k]})
	}
	slices.SortStableFunc(list, func(a, b GreetingCount) int { return cmp.Compare(b.Conns, a.Conns) })
	return list
}

// summary says how the connections spread over the greetings, on one
// line: `"backend-1" 10 (50.0%), "backend-2" 10 (50.0%) of 20 connections,
// warmup included`. Each greeting is quoted, as a server's text may hold
// anything.
func (g Greetings) summary() string {
	var total int64
	for _, n := range g {
		total += n
	}
	if total == 0 {
		return "none read"
	}
	var parts []string
	sorted := g.Sorted()
	for _, c := range sorted[:min(len(sorted), maxShownGreetings)] {
		parts = append(parts, fmt.Sprintf("%s %d (%.1f%%)", strconv.Quote(c.Greeting), c.Conns, 100*float64(c.Conns)/float64(total)))
	}
	if rest := len(sorted) - maxShownGreetings; rest > 0 {
		parts = append(parts, fmt.Sprintf("and %d more (the JSON has them all)", rest))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" of %d connections, warmup included", total)
}

// maxShownGreetings is how many greetings the table names, the most
// frequent first: a server whose greeting changes on every connection
// made a line of 40 KB.
const maxShownGreetings = 20
