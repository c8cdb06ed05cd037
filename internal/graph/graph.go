// Package graph finds the cycles of a directed graph (the apps' dependencies). It imports no
// lockstep package.
package graph

// Cycles returns each cycle of the graph once, as the nodes along it, visiting nodes in the order
// given and each node's successors (next) in theirs.
func Cycles(nodes []string, next func(string) []string) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var out [][]string
	var visit func(id string)
	visit = func(id string) {
		color[id] = grey
		stack = append(stack, id)
		for _, dep := range next(id) {
			switch color[dep] {
			case white:
				visit(dep)
			case grey:
				for k := len(stack) - 1; k >= 0; k-- {
					if stack[k] == dep {
						out = append(out, append([]string(nil), stack[k:]...))
						break
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
	}
	for _, n := range nodes {
		if color[n] == white {
			visit(n)
		}
	}
	return out
}
