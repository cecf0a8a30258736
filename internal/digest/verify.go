package digest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// MismatchError is content that does not hash to the digest it was named
// by, or does not have the size it was named with.
type MismatchError struct {
	Name     string // what was read, for the message
	Want     Sum
	Got      Sum   // the sha256 of what was read (up to Size bytes)
	WantSize int64 // -1: any size
	Size     int64 // the bytes read, past WantSize when there were more
}

func (e *MismatchError) Error() string {
	if e.WantSize >= 0 && e.Size != e.WantSize {
		return fmt.Sprintf("%s: %d bytes, not %d", e.Name, e.Size, e.WantSize)
	}
	return fmt.Sprintf("%s: content hashes to %s, not %s", e.Name, e.Got, e.Want)
}

// Verifier is a reader that checks what passes through it: see
// VerifyingReader.
type Verifier struct {
	r    io.Reader
	name string
	want Sum
	size int64
	h    hash.Hash
	n    int64
	err  error // sticky: a mismatch, or io.EOF after a verified end

	// OnMismatch, when set, makes the error a mismatch fails with out of
	// the *MismatchError (a package's own error type, so that callers'
	// errors.As keep telling one kind of content from another).
	OnMismatch func(*MismatchError) error
	// OnReadError, when set, makes the error the reader fails with out of
	// an error of r's own (not io.EOF); by default it passes unchanged.
	OnReadError func(error) error
}

// VerifyingReader returns a reader of r's bytes that counts and hashes
// them and fails, in place of io.EOF, with a *MismatchError naming name
// unless they hash to want and, when size is not negative, number size.
// It fails as soon as more than size bytes have been read, before handing
// them on: a reader never passes on the bytes of a read that failed the
// check, so a consumer that stops at the first error (a backend's Create,
// an upload, a tar writer) never commits content that is not want. A
// mismatch, once found, is returned by every later Read.
func VerifyingReader(r io.Reader, name string, want Sum, size int64) *Verifier {
	return &Verifier{r: r, name: name, want: want, size: size, h: sha256.New()}
}

func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.size >= 0 && v.n > v.size:
		v.err = v.mismatch()
		return 0, v.err
	case errors.Is(err, io.EOF):
		if m := v.Check(); m != nil {
			v.err = m
			return 0, v.err
		}
		v.err = io.EOF
	case err != nil && v.OnReadError != nil:
		err = v.OnReadError(err)
	}
	return n, err
}

// N is the number of bytes read so far.
func (v *Verifier) N() int64 { return v.n }

// Check reports whether the bytes read so far are the whole content: nil
// if they hash to want and (when known) number its size, else the error a
// mismatch fails with. A caller that meets an error of its reader's own at
// the very end can ask what the bytes were.
func (v *Verifier) Check() error {
	if v.sum() == v.want && (v.size < 0 || v.n == v.size) {
		return nil
	}
	return v.mismatch()
}

func (v *Verifier) sum() Sum {
	var got Sum
	v.h.Sum(got[:0])
	return got
}

func (v *Verifier) mismatch() error {
	m := &MismatchError{Name: v.name, Want: v.want, Got: v.sum(), WantSize: v.size, Size: v.n}
	if v.OnMismatch != nil {
		return v.OnMismatch(m)
	}
	return m
}
