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

// pullProgress logs a pull's progress lines: at Info at most once per interval (the first line at
// once, with a count of the lines held back since the last), every line at Debug.
type pullProgress struct {
	*lineLog
	lines int
}

func newPullProgress(log logrus.FieldLogger, every time.Duration) *pullProgress {
	p := &pullProgress{}
	var last time.Time
	held := 0
	p.lineLog = &lineLog{line: func(l string) {
		p.lines++
		now := time.Now()
		if last.IsZero() || now.Sub(last) >= every {
			e := log
			if held > 0 {
				e = log.WithField("more_lines", held)
			}
			e.Info("pull: " + l)
			last, held = now, 0
			return
		}
		held++
		log.Debug("pull: " + l)
	}}
	return p
}
