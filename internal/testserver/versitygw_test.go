package testserver

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatal ends only the goroutine that
// calls it, recording the message, so a test can watch StartS3 fail.
type fatalRecorder struct {
	testing.TB
	fatal chan string
}

func (r *fatalRecorder) Fatal(args ...any) { r.fatal <- fmt.Sprint(args...); runtime.Goexit() }

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestCrashFailsAtOnce: a server that exits while starting fails the test
// at once, with its log, instead of after the 20 s start-up deadline.
func TestCrashFailsAtOnce(t *testing.T) {
	srv := StartS3(t)
	srv.Stop()
	// A posix root that is a file: versitygw exits right away.
	if err := os.RemoveAll(srv.root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(srv.root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &fatalRecorder{TB: t, fatal: make(chan string, 1)}
	srv.t = rec
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Start()
	}()
	<-done
	elapsed := time.Since(start)
	select {
	case msg := <-rec.fatal:
		if !strings.Contains(msg, "exited") || !strings.Contains(msg, "not a directory") {
			t.Errorf("want a message saying versitygw exited, with its log; got:\n%s", msg)
		}
	default:
		t.Fatal("Start returned although versitygw could not start")
	}
	if elapsed > 5*time.Second {
		t.Errorf("the crash was noticed after %v", elapsed)
	}
}
