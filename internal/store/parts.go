package store

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"sync"
)

// What the network backends (S3, Cloud Storage, Azure Blob) share to
// buffer a write: a Create reads a small part first (most objects fit and
// take no part-sized buffer), then a part, and sends in one request what
// ends there.

// SmallPart is the buffer a network backend's Create reads first.
const SmallPart = 64 << 10

// BufferPool holds reusable buffers of one size.
type BufferPool struct {
	size int
	p    sync.Pool
}

// NewBufferPool returns a pool of buffers of size bytes.
func NewBufferPool(size int) *BufferPool { return &BufferPool{size: size} }

// Get takes a buffer of the pool's size.
func (p *BufferPool) Get() *[]byte {
	if bp, ok := p.p.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, p.size)
	return &b
}

// Put returns a buffer Get gave.
func (p *BufferPool) Put(b *[]byte) { p.p.Put(b) }

// ReadPart fills buf from r; n < len(buf) means r ended.
func ReadPart(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return n, nil
	}
	return n, err
}

// NewWriteTag returns a random tag a conditional write stores with its
// object: the one thing that tells, after a lost answer, the object this
// write made from another writer's with the same bytes.
func NewWriteTag() string {
	var t [16]byte
	_, _ = rand.Read(t[:]) // never fails (crypto/rand)
	return hex.EncodeToString(t[:])
}
