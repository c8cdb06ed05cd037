package manifest

import (
	"strings"
	"testing"
)

// A companion whose unit would be one of lockstep's own (lockstep-reconcile.service) is refused.
func TestCompanionIDReservedForLockstepsUnits(t *testing.T) {
	a, ps := Parse("web.yaml", []byte(mutate("    - id: web-ui", "    - id: reconcile")))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	ps = Validate("web.yaml", a, roots)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), `web.yaml: app.companions[0].id: "reconcile" is reserved: its unit lockstep-reconcile.service is one of lockstep's own`) {
		t.Fatalf("problems %v", ps)
	}
}
