// Package redact is the logrus hook that passes every log line through a redaction function (the
// reconciler's secret store): the backstop that keeps a secret value a message quoted by mistake out
// of the journal.
package redact

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// Hook redacts each entry's message and its fields (strings, errors and Stringers become their
// redacted text) before the entry is formatted.
type Hook struct {
	Redact func(string) string
}

// Levels is every level.
func (Hook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire rewrites the entry in place.
func (h Hook) Fire(e *logrus.Entry) error {
	e.Message = h.Redact(e.Message)
	if len(e.Data) == 0 {
		return nil
	}
	data := make(logrus.Fields, len(e.Data))
	for k, v := range e.Data {
		switch x := v.(type) {
		case string:
			v = h.Redact(x)
		case error:
			v = h.Redact(x.Error())
		case fmt.Stringer:
			v = h.Redact(x.String())
		}
		data[k] = v
	}
	e.Data = data
	return nil
}
