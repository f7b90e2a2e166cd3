package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress prints one line per step of long work, only when stderr is a
// terminal: a pipe or a file gets nothing (the CLI contract).
type progress struct {
	w     io.Writer
	on    bool
	start time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: isTerminal(w), start: time.Now()}
}

func (p *progress) step(format string, args ...any) {
	if p.on {
		fmt.Fprintf(p.w, "[%6.2fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintf(p.w, "[%6.2fs] done\n", time.Since(p.start).Seconds())
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
