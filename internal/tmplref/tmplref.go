// Package tmplref reads, without running it, which dependencies a pre-start template asks values of
// (dep "NAME" "KEY"), so that lockstep knows which containers use a dependency's values. It imports
// no lockstep package.
package tmplref

import (
	"text/template"
	"text/template/parse"
)

// Dynamic stands for a dependency named by something other than a string literal (a variable): the
// template may ask any dependency.
const Dynamic = "*"

// Deps parses text as a pre-start template (with lockstep's functions dep, has, export, secret) and
// returns the names its dep calls give, in order, without duplicates; Dynamic for a name that is not
// a literal. The error is text/template's parse error.
func Deps(name, text string) ([]string, error) {
	funcs := template.FuncMap{
		"dep":    func(string, string) string { return "" },
		"has":    func(string) bool { return false },
		"export": func(string) string { return "" },
		"secret": func(string) string { return "" },
	}
	t, err := template.New(name).Funcs(funcs).Parse(text)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "dep" {
				if s, ok := argAt(n.Args, 1).(*parse.StringNode); ok {
					add(s.Text)
				} else {
					add(Dynamic)
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	return out, nil
}

func argAt(args []parse.Node, i int) parse.Node {
	if i < len(args) {
		return args[i]
	}
	return nil
}
