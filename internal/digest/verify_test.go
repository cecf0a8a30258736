package digest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestVerifyingReader(t *testing.T) {
	body := []byte("hello, verified world")
	want := Bytes(body)
	for _, size := range []int64{int64(len(body)), -1} {
		v := VerifyingReader(bytes.NewReader(body), "greeting", want, size)
		got, err := io.ReadAll(v)
		if err != nil || !bytes.Equal(got, body) || v.N() != int64(len(body)) {
			t.Errorf("size %d: read %q, %d bytes counted, %v; want the body and no error", size, got, v.N(), err)
		}
		if n, err := v.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("size %d: a Read after the end: %d, %v; want 0, io.EOF", size, n, err)
		}
	}

	other := []byte("hello, verified World")
	for _, tc := range []struct {
		name     string
		r        io.Reader
		size     int64
		wantSize int64 // the mismatch's Size
		msg      string
		handed   int // bytes handed on before the mismatch
	}{
		// bytes.Reader gives all its bytes, then (0, io.EOF).
		{"other bytes", bytes.NewReader(other), int64(len(body)), int64(len(other)), "content hashes to " + Bytes(other).String(), len(other)},
		{"other bytes, any size", bytes.NewReader(other), -1, int64(len(other)), "not " + want.String(), len(other)},
		{"short", bytes.NewReader(body[:5]), int64(len(body)), 5, "5 bytes, not 21", 5},
		// One byte a Read: it stops at the first byte past the size,
		// which is not handed on.
		{"long", iotest.OneByteReader(bytes.NewReader(append(body, '!', '!'))), int64(len(body)), int64(len(body)) + 1, "22 bytes, not 21", len(body)},
		// All bytes come with io.EOF, in one Read that fails: none is handed on.
		{"other bytes with EOF", iotest.DataErrReader(bytes.NewReader(other)), int64(len(body)), int64(len(other)), "content hashes to", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := VerifyingReader(tc.r, "greeting", want, tc.size)
			got, err := io.ReadAll(v)
			var m *MismatchError
			if !errors.As(err, &m) || m.Name != "greeting" || m.Want != want || m.WantSize != tc.size || m.Size != tc.wantSize ||
				!strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "greeting: ") {
				t.Fatalf("got %#v (%v), want a *MismatchError of %d bytes saying %q", err, err, tc.wantSize, tc.msg)
			}
			if len(got) != tc.handed {
				t.Errorf("%d bytes handed on before the mismatch, want %d", len(got), tc.handed)
			}
			if n, again := v.Read(make([]byte, 8)); n != 0 || again != err {
				t.Errorf("a Read after the mismatch: %d, %v; want 0 and the same error", n, again)
			}
		})
	}
}

type otherError struct{ m *MismatchError }

func (e *otherError) Error() string { return "other: " + e.m.Error() }

func TestVerifyingReaderHooks(t *testing.T) {
	body := []byte("0123456789")
	v := VerifyingReader(bytes.NewReader([]byte("01234567xx")), "digits", Bytes(body), 10)
	v.OnMismatch = func(m *MismatchError) error { return &otherError{m} }
	var oe *otherError
	if _, err := io.ReadAll(v); !errors.As(err, &oe) || oe.m.Got != Bytes([]byte("01234567xx")) {
		t.Errorf("OnMismatch: %v, want the *otherError made of the mismatch", err)
	}

	// A read error of the source's own goes through OnReadError, which may
	// ask whether what was read is the whole content.
	boom := errors.New("connection reset")
	for _, tc := range []struct {
		name  string
		bytes string
		check bool // Check says the content is whole
	}{{"whole", "0123456789", true}, {"not whole", "012345678x", false}, {"short", "01234", false}} {
		v := VerifyingReader(io.MultiReader(strings.NewReader(tc.bytes), iotest.ErrReader(boom)), "digits", Bytes(body), 10)
		var checked error
		v.OnReadError = func(err error) error {
			checked = v.Check()
			return &otherError{&MismatchError{Name: err.Error()}}
		}
		_, err := io.ReadAll(v)
		if !errors.As(err, &oe) || oe.m.Name != boom.Error() {
			t.Errorf("%s: OnReadError: %v, want the *otherError it made", tc.name, err)
		}
		if (checked == nil) != tc.check {
			t.Errorf("%s: Check at the read error: %v, want whole %v", tc.name, checked, tc.check)
		}
	}
	// Without OnReadError the source's error passes unchanged.
	if _, err := io.ReadAll(VerifyingReader(iotest.ErrReader(boom), "digits", Bytes(body), 10)); err != boom {
		t.Errorf("read error: %v, want %v unchanged", err, boom)
	}
}
