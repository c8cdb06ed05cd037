package dbusapi

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/outcome"
)

// Every class's D-Bus error name is one of this API's, documented in docs/dbus-api.md, and a refusal
// of the class is answered with it.
func TestEveryClassHasADocumentedDBusError(t *testing.T) {
	if outcome.DBusErrorPrefix != ErrorPrefix {
		t.Fatalf("outcome's D-Bus error prefix %q, the API's %q", outcome.DBusErrorPrefix, ErrorPrefix)
	}
	doc, err := os.ReadFile("../docs/dbus-api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range outcome.Table() {
		if !strings.Contains(string(doc), "| `"+i.DBus+"` |") {
			t.Errorf("class %s: %s is not in docs/dbus-api.md's errors", i.Class, i.DBus)
		}
		if i.Err == nil {
			continue
		}
		if got := mapErr(fmt.Errorf("install x: %w", i.Err)); got.Name != i.DBus || got.Body[0] != "install x: "+i.Err.Error() {
			t.Errorf("class %s answered %s %v, want %s", i.Class, got.Name, got.Body, i.DBus)
		}
	}
}
