// Package suggest finds the known name closest to a mistyped one ("did you mean ...?"). It imports no
// lockstep package.
package suggest

import (
	"sort"
	"strings"
)

// Closest returns the known name closest to key, if it is close enough to be a likely typo.
func Closest(key string, names []string) string {
	sort.Strings(names)
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(key) > 8 {
		limit = 3
	}
	if bestD <= limit || strings.ReplaceAll(strings.ToLower(key), "-", "_") == best {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
