package redact

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

type stringer string

func (s stringer) String() string { return string(s) }

// TestHookRedactsMessageAndFields: a canary secret in the message, a string field, an error field
// (WithError) and a Stringer never reaches the formatted line.
func TestHookRedactsMessageAndFields(t *testing.T) {
	const canary = "c4n4ry-5ecret-value-0123456789abcdef"
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.AddHook(Hook{Redact: func(s string) string { return strings.ReplaceAll(s, canary, "[secret]") }})
	l.WithError(errors.New("podman said " + canary)).WithFields(logrus.Fields{"cmd": "x " + canary, "s": stringer(canary), "n": 3}).Warn("pass " + canary)
	out := buf.String()
	if strings.Contains(out, canary) || strings.Count(out, "[secret]") != 4 || !strings.Contains(out, "n=3") {
		t.Fatalf("line: %s", out)
	}
}
