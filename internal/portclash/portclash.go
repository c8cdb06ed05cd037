// Package portclash finds the host ports published twice: by owner, one per address, port and
// protocol, where an unspecified address (empty, 0.0.0.0, ::) clashes with every address. Ports are
// grouped by number and protocol first, so the check is linear in the ports (plus the pairs within
// a group), not quadratic. It imports no lockstep package.
package portclash

import (
	"sort"
	"sync/atomic"
)

// Port is one published host port and who publishes it.
type Port struct {
	Owner    string
	HostIP   string
	HostPort uint16
	Protocol string
}

// Comparisons counts the pairs of ports compared (for the tests that it stays linear).
var Comparisons atomic.Int64

func wildcard(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// Clashes returns the pairs (i, j), i < j, of ports of different owners that clash, sorted.
func Clashes(ports []Port) [][2]int {
	type key struct {
		port  uint16
		proto string
	}
	groups := map[key][]int{}
	var out [][2]int
	for j, y := range ports {
		k := key{y.HostPort, y.Protocol}
		for _, i := range groups[k] {
			Comparisons.Add(1)
			x := ports[i]
			if x.Owner != y.Owner && (wildcard(x.HostIP) || wildcard(y.HostIP) || x.HostIP == y.HostIP) {
				out = append(out, [2]int{i, j})
			}
		}
		groups[k] = append(groups[k], j)
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a][0] < out[b][0] || (out[a][0] == out[b][0] && out[a][1] < out[b][1])
	})
	return out
}
