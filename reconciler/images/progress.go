package images

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// lineLog is an io.Writer that hands each complete line (without its end, blank ones dropped) to line.
type lineLog struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if l := strings.TrimSpace(string(w.buf[:i])); l != "" {
			w.line(l)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush hands over a last line that had no end.
func (w *lineLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := strings.TrimSpace(string(w.buf)); l != "" {
		w.line(l)
	}
	w.buf = nil
}

// progressLine is one line of a pull's progress as pullProgress passes it on: Shown at Info (else
// at Debug only), with the count of lines Held back at Debug since the last one shown.
type progressLine struct {
	Text  string
	Shown bool
	Held  int
}

// pullProgress passes a pull's progress lines on (to the log: logProgress): shown at Info at most
// once per interval (the first line at once, with a count of the lines held back since the last),
// every line at Debug.
type pullProgress struct {
	*lineLog
	lines, shown int
}

func newPullProgress(log logrus.FieldLogger, every time.Duration) *pullProgress {
	return newProgress(every, time.Now, func(l progressLine) { logProgress(log, l) })
}

// newProgress is pullProgress with its clock and where its lines go.
func newProgress(every time.Duration, now func() time.Time, emit func(progressLine)) *pullProgress {
	p := &pullProgress{}
	var last time.Time
	held := 0
	p.lineLog = &lineLog{line: func(l string) {
		p.lines++
		t := now()
		if last.IsZero() || t.Sub(last) >= every {
			p.shown++
			emit(progressLine{Text: l, Shown: true, Held: held})
			last, held = t, 0
			return
		}
		held++
		emit(progressLine{Text: l})
	}}
	return p
}

// logProgress logs a progress line: "pull: LINE", at Info when shown (with more_lines, the count
// held back before it, when any), else at Debug.
func logProgress(log logrus.FieldLogger, l progressLine) {
	switch {
	case !l.Shown:
		log.Debug("pull: " + l.Text)
	case l.Held > 0:
		log.WithField("more_lines", l.Held).Info("pull: " + l.Text)
	default:
		log.Info("pull: " + l.Text)
	}
}
