package graph

import (
	"fmt"
	"testing"
)

func TestCycles(t *testing.T) {
	edges := map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
	got := fmt.Sprint(Cycles([]string{"a", "b", "c", "d", "e"}, func(n string) []string { return edges[n] }))
	if want := "[[a b c] [d]]"; got != want {
		t.Fatalf("Cycles = %s, want %s", got, want)
	}
}
