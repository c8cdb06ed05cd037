package tmplref

import (
	"slices"
	"testing"
)

func TestDeps(t *testing.T) {
	for text, want := range map[string][]string{
		"plain": nil,
		`{{dep "bitcoin" "rpc_host"}}:{{dep "bitcoin" "rpc_port"}}`:                 {"bitcoin"},
		`{{if has "electrs"}}{{dep "electrs" "host"}}{{end}}{{secret "x"}}`:         {"electrs"},
		`{{with $n := "tor"}}{{dep $n "proxy"}}{{end}}`:                             {Dynamic},
		`{{range .X}}{{(dep "a" "b") | printf "%s"}}{{else}}{{dep "c" "d"}}{{end}}`: {"a", "c"},
		`{{define "u"}}{{dep "lnd" "host"}}{{end}}{{template "u" .}}`:               {"lnd"},
	} {
		got, err := Deps("t", text)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Deps(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	if _, err := Deps("t", "{{dep"); err == nil {
		t.Error("a broken template parsed")
	}
}
