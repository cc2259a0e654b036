package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// failAfter accepts n bytes and then fails.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

// TestChunkPipeDeliversEveryByteInOrder mixes Write, WriteString, WriteByte and
// ReadFrom of odd sizes across chunk boundaries: every sink sees the same stream.
func TestChunkPipeDeliversEveryByteInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, 7*copyBufSize+12345)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	var a, b bytes.Buffer
	p := newChunkPipe(context.Background(), &a, &b)
	for off := 0; off < len(src); {
		k := min(len(src)-off, 1+rng.IntN(3*copyBufSize/2))
		var err error
		switch rng.IntN(4) {
		case 0:
			_, err = p.Write(src[off : off+k])
		case 1:
			_, err = p.WriteString(string(src[off : off+k]))
		case 2:
			k = 1
			err = p.WriteByte(src[off])
		default:
			// short reads, as from a pipe or socket
			_, err = p.ReadFrom(iotest.HalfReader(bytes.NewReader(src[off : off+k])))
		}
		if err != nil {
			t.Fatal(err)
		}
		off += k
	}
	n, err := p.Close()
	if err != nil || n != int64(len(src)) {
		t.Fatalf("Close = %d, %v; want %d", n, err, len(src))
	}
	if !bytes.Equal(a.Bytes(), src) || !bytes.Equal(b.Bytes(), src) {
		t.Fatal("a sink saw other bytes than were written")
	}
	if p.made > pipeDepth {
		t.Fatalf("%d chunks allocated, bound is %d", p.made, pipeDepth)
	}
	if _, err := p.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
}

// TestChunkPipeSinkErrorStopsProducer: a failing sink's error reaches the producer,
// which must not block, and Close returns it.
func TestChunkPipeSinkErrorStopsProducer(t *testing.T) {
	boom := errors.New("disk on fire")
	var ok bytes.Buffer
	p := newChunkPipe(context.Background(), &ok, &failAfter{n: 2 * copyBufSize, err: boom})
	zero := bytes.NewReader(make([]byte, 64*copyBufSize))
	_, err := p.ReadFrom(zero)
	if _, cerr := p.Close(); !errors.Is(cerr, boom) {
		t.Fatalf("Close = %v, want %v", cerr, boom)
	}
	if err != nil && !errors.Is(err, boom) {
		t.Fatalf("ReadFrom = %v", err)
	}
}

// TestChunkPipeCancel: a cancelled context stops the producer with its error.
func TestChunkPipeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	block := make(chan struct{})
	p := newChunkPipe(ctx, writerFunc(func(b []byte) (int, error) { <-block; return len(b), nil }))
	go cancel()
	_, err := p.ReadFrom(bytes.NewReader(make([]byte, 64*copyBufSize)))
	close(block)
	p.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadFrom after cancel = %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestChunkPipeNoProgress: a reader that returns nothing forever is an error, not a hang.
func TestChunkPipeNoProgress(t *testing.T) {
	var sink bytes.Buffer
	p := newChunkPipe(context.Background(), &sink)
	_, err := p.ReadFrom(readerFunc(func([]byte) (int, error) { return 0, nil }))
	p.Close()
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("ReadFrom = %v, want io.ErrNoProgress", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }
