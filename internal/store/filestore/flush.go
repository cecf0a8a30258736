package filestore

import (
	"errors"
	"os"
	"sync"
)

// fsyncEach makes the given files and directories durable, an fsync each.
func fsyncEach(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		_ = f.Close() // opened only to fsync it
		if err != nil && !errors.Is(err, os.ErrInvalid) {
			return err
		}
	}
	return nil
}

// errorWatch is the descriptor a Backend syncs its filesystem through
// (see watch), and the first error that sync reported: a write to the
// store's disk that failed may have been any staged file's, so every
// later flush of the process fails with it too.
type errorWatch struct {
	once sync.Once
	f    *os.File
	mu   sync.Mutex
	err  error
}

func (w *errorWatch) open(root string) {
	w.once.Do(func() {
		if f, err := os.Open(root); err == nil {
			w.mu.Lock()
			w.f = f
			w.mu.Unlock()
		}
	})
}

// fd is the watching descriptor, nil until a Stage opened it.
func (w *errorWatch) fd() *os.File {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f
}

// fail keeps err, the first a sync reported, and returns it.
func (w *errorWatch) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// failed is the error a sync reported earlier in this process, if any.
func (w *errorWatch) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
