package report

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MaxBytes bounds a report's size (its JSON form): far under the system bus's message limit (32 MiB
// by default), so Report over D-Bus never fails, and quick to read for every client.
const MaxBytes = 4 << 20

// bounds are the successive limits Clean tries until the report fits MaxBytes: rows kept per list,
// bytes kept per string.
var bounds = []struct{ rows, text int }{{500, 4096}, {200, 1024}, {50, 256}, {10, 128}}

// Clean makes r safe to show and to send: every string (most come from podman, registries,
// containers and files: error messages, HTTP status lines) made valid UTF-8 with its control and
// bidirectional-override characters removed (a newline or tab becomes a space), so a container
// cannot put terminal escapes in front of an operator; and r bounded to MaxBytes: long strings cut
// (ending in "…"), long lists cut with the count of what was left out (a last failure or action
// saying "N more ... not shown"). It changes r in place.
func Clean(r *Report) {
	if r == nil {
		return
	}
	cleanStrings(reflect.ValueOf(r).Elem())
	for _, b := range bounds {
		if size(r) <= MaxBytes {
			return
		}
		bound(r, b.rows, b.text)
	}
}

func size(r *Report) int {
	b, err := json.Marshal(r)
	if err != nil {
		return 0
	}
	return len(b)
}

// CleanText is the string as Clean leaves it: valid UTF-8, no control or bidi-override characters.
func CleanText(s string) string {
	clean := true
	for _, c := range s {
		if unsafeRune(c) || c == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(c rune) rune {
		switch {
		case c == '\n' || c == '\t' || c == '\r':
			return ' '
		case unsafeRune(c):
			return -1
		}
		return c
	}, s)
}

func unsafeRune(c rune) bool {
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) ||
		(c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029
}

// cleanStrings applies CleanText to every string in v (structs, slices, pointers).
func cleanStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(CleanText(v.String()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			cleanStrings(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			cleanStrings(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			cleanStrings(v.Elem())
		}
	}
}

func isClean(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return CleanText(v.String()) == v.String()
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !isClean(v.Field(i)) {
				return false
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if !isClean(v.Index(i)) {
				return false
			}
		}
	case reflect.Pointer:
		return v.IsNil() || isClean(v.Elem())
	}
	return true
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}

func cutStrings(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(cut(v.String(), n))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			cutStrings(v.Field(i), n)
		}
	case reflect.Slice:
		for i := range v.Len() {
			cutStrings(v.Index(i), n)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			cutStrings(v.Elem(), n)
		}
	}
}

func bound(r *Report, rows, text int) {
	if n := len(r.Failures); n > rows {
		r.Failures = append(r.Failures[:rows-1:rows-1], Failure{Error: fmt.Sprintf("%d more failures not shown (the report is bounded)", n-rows+1)})
	}
	if n := len(r.Actions); n > rows {
		r.Actions = append(r.Actions[:rows-1:rows-1], ActionRec{Action: "more", Cause: fmt.Sprintf("%d more actions not shown (the report is bounded)", n-rows+1)})
	}
	var cutRows []string
	if n := len(r.Apps); n > rows {
		r.Apps = r.Apps[:rows:rows]
		cutRows = append(cutRows, fmt.Sprintf("%d more apps", n-rows))
	}
	if n := len(r.Companions); n > rows {
		r.Companions = r.Companions[:rows:rows]
		cutRows = append(cutRows, fmt.Sprintf("%d more companions", n-rows))
	}
	if n := len(r.HostProblems); n > rows {
		r.HostProblems = r.HostProblems[:rows:rows]
		cutRows = append(cutRows, fmt.Sprintf("%d more host problems", n-rows))
	}
	for i := range r.Apps {
		if c := r.Apps[i].Containers; len(c) > rows {
			r.Apps[i].Containers = c[:rows:rows]
		}
	}
	for i := range r.HostProblems {
		if a := r.HostProblems[i].Apps; len(a) > rows {
			r.HostProblems[i].Apps = a[:rows:rows]
		}
	}
	cutStrings(reflect.ValueOf(r).Elem(), text)
	if len(cutRows) > 0 {
		r.Failures = append(r.Failures, Failure{Error: strings.Join(cutRows, ", ") + " not shown (the report is bounded)"})
	}
}

// Bounded returns r when it is clean and within MaxBytes, else a copy of r that Clean made so (r
// itself is left as it is: it may be shared). The D-Bus and HTTP APIs send what it returns,
// whoever made r.
func Bounded(r *Report) *Report {
	if r == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil || (len(b) <= MaxBytes && isClean(reflect.ValueOf(r).Elem())) {
		return r
	}
	var c Report
	if json.Unmarshal(b, &c) != nil {
		return r
	}
	Clean(&c)
	return &c
}
