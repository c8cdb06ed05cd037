// Package ctlchar finds control characters (newline, NUL, escape, DEL, line and paragraph separators)
// in the strings of a decoded YAML document, so a manifest cannot smuggle them into a unit file, a
// report or a terminal.
package ctlchar

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"
)

// Walk reports (by its yaml field path) every string in v that holds a control character (newline, NUL, escape, DEL...).
func Walk(v reflect.Value, field string, report func(string)) {
	switch v.Kind() {
	case reflect.String:
		for _, r := range v.String() {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				report(field)
				return
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			Walk(v.Elem(), field, report)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			Walk(v.Field(i), field+"."+tag, report)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			Walk(v.Index(i), fmt.Sprintf("%s[%d]", field, i), report)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			name := k.String()
			if strings.ContainsFunc(name, unicode.IsControl) {
				report(field)
				continue
			}
			Walk(v.MapIndex(k), field+"."+name, report)
		}
	}
}
