package podman

import (
	"errors"
	"testing"

	"github.com/containers/podman/v5/pkg/errorhandling"

	"github.com/lockstep/lockstep/engine"
)

// A create refused for its name is ErrNameInUse (and so ErrConflict) by the cause podman sends, on
// libpod's 500 (as podman 4.3.1 answers, seen) and the compat API's 409; other 500s are not.
func TestClassifyNameInUse(t *testing.T) {
	for _, c := range []struct {
		code         int
		cause        string
		inUse, confl bool
	}{
		{500, "that name is already in use", true, true},
		{500, "container already exists", true, true},
		{409, "that name is already in use", true, true},
		{409, "container is running", false, true},
		{500, "no command or entrypoint provided, and no CMD or ENTRYPOINT from image", false, false},
		{404, "no such container", false, false},
	} {
		err := classify("creating container x", &errorhandling.ErrorModel{ResponseCode: c.code, Because: c.cause, Message: "creating container storage: " + c.cause})
		if errors.Is(err, engine.ErrNameInUse) != c.inUse || errors.Is(err, engine.ErrConflict) != c.confl {
			t.Errorf("%d %q: %v: name in use %v, conflict %v", c.code, c.cause, err, errors.Is(err, engine.ErrNameInUse), errors.Is(err, engine.ErrConflict))
		}
	}
}
