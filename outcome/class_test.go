package outcome

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// declared returns the values of every constant of type T declared in the package's class.go.
func declared(t *testing.T, typ string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "class.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == typ {
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
		}
		return true
	})
	return out
}

// Every class declared has one row, with a metric label, a CLI word and a D-Bus error name of the
// API; labels and words are unique; a row's sentinel classifies as its class, wrapped or not.
func TestEveryClassHasAMetricLabelACLIWordAndADBusName(t *testing.T) {
	consts := declared(t, "Class")
	if len(consts) < 10 {
		t.Fatalf("found only %d Class constants in class.go: %v", len(consts), consts)
	}
	rows := map[Class]Info{}
	metrics, words := map[string]Class{}, map[string]Class{}
	for _, i := range Table() {
		if _, dup := rows[i.Class]; dup {
			t.Errorf("class %s has two rows", i.Class)
		}
		rows[i.Class] = i
		if i.Metric == "" || strings.ContainsAny(i.Metric, "- ") {
			t.Errorf("class %s: metric label %q (want snake_case)", i.Class, i.Metric)
		}
		if i.Word == "" {
			t.Errorf("class %s has no CLI word", i.Class)
		}
		if !strings.HasPrefix(i.DBus, DBusErrorPrefix) || len(i.DBus) == len(DBusErrorPrefix) {
			t.Errorf("class %s: D-Bus error name %q", i.Class, i.DBus)
		}
		if c, dup := metrics[i.Metric]; dup {
			t.Errorf("classes %s and %s share the metric label %s", c, i.Class, i.Metric)
		}
		if c, dup := words[i.Word]; dup {
			t.Errorf("classes %s and %s share the CLI word %s", c, i.Class, i.Word)
		}
		metrics[i.Metric], words[i.Word] = i.Class, i.Class
		if i.Class.Metric() != i.Metric || i.Class.Word() != i.Word || i.Class.DBusError() != i.DBus || i.Class.Err() != i.Err {
			t.Errorf("class %s: methods disagree with its row", i.Class)
		}
		if i.Err != nil {
			if got := Of(i.Err); got != i.Class {
				t.Errorf("Of(%v) = %s, want %s", i.Err, got, i.Class)
			}
			if got := Of(fmt.Errorf("doing x: %w", i.Err)); got != i.Class {
				t.Errorf("Of(wrapped %v) = %s, want %s", i.Err, got, i.Class)
			}
		} else if i.Class != ClassFailed {
			t.Errorf("class %s has no sentinel error: nothing can have it", i.Class)
		}
	}
	for _, c := range consts {
		if _, ok := rows[Class(c)]; !ok {
			t.Errorf("class %s is declared but has no row in the table", c)
		}
	}
	if len(rows) != len(consts) {
		t.Errorf("%d rows for %d declared classes", len(rows), len(consts))
	}
}

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want Class
	}{
		{nil, ""},
		{fmt.Errorf("creating: %w", fmt.Errorf("boom")), ClassFailed},
		{context.DeadlineExceeded, ClassTimeout},
		{fmt.Errorf("x: %w", context.Canceled), ClassCancelled},
		// A health check cut short is both podman-unavailable and a timeout: the timeout wins.
		{fmt.Errorf("%w: %w: no answer", ErrUnavailable, ErrTimeout), ClassTimeout},
		{fmt.Errorf("listing containers: %w", ErrUnavailable), ClassUnavailable},
	} {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	// A class this lockstep does not know (a newer lockstepd's) is shown and counted as failed, its
	// name kept.
	if c := Class("future"); c.Word() != "failed" || c.Metric() != "failed" || c.DBusError() != DBusErrorPrefix+"Failed" {
		t.Errorf("unknown class: %s %s %s", c.Word(), c.Metric(), c.DBusError())
	}
	if ByDBusError(DBusErrorPrefix+"NoSuchApp") != ClassNoSuchApp || ByDBusError(DBusErrorPrefix+"Failed") != ClassFailed ||
		ByDBusError(DBusErrorPrefix+"Needed") != ClassNeeded || ByDBusError("org.freedesktop.DBus.Error.NoReply") != "" {
		t.Error("ByDBusError")
	}
}
