package relay

// A frame's wire encoding, shared by the readers of an output that would
// each build the same bytes (RTSP over TCP: the interleaved records of a
// reader that has dropped nothing carry the Stream's own SSRC, sequence
// numbers and timestamps, so they are the same for every such reader on
// the same channel). The first reader builds it; the others write it as
// it is. A frame keeps its encoding only while it is among its track's
// newest frames (encodingWindow): a Stream holds a few frames' encodings
// per track, never a GOP's.

import "sync/atomic"

// encodingWindow is how many of a track's newest frames keep their
// encoding: a reader up to this many frames behind (a burst of frames
// the camera sent at once) still shares it.
const encodingWindow = 8

type encoding struct {
	key uint32
	b   []byte
}

// sealed marks a frame that no longer keeps an encoding.
var sealed = &encoding{}

// frameEncoding is the Frame's slot.
type frameEncoding struct {
	p atomic.Pointer[encoding]
}

// SharedEncoding returns f's encoding for key (which names how it was
// built: for RTSP, the interleaved channel), calling build for it if no
// reader has yet. The bytes are shared and read-only. ok is false when f
// keeps no encoding any more (it is older than its track's newest few
// frames) or keeps one for another key: the caller then encodes into its
// own buffer. build gets f and key (a plain function, so a call that
// finds the encoding built allocates nothing) and must not call
// SharedEncoding.
func (f *Frame) SharedEncoding(key uint32, build func(f *Frame, key uint32) []byte) (b []byte, ok bool) {
	e := f.enc.p.Load()
	if e == sealed {
		return nil, false
	}
	if e != nil {
		return e.b, e.key == key
	}
	ne := &encoding{key: key, b: build(f, key)}
	// if another reader stored one meanwhile, or the frame was sealed, ne
	// is still a valid encoding for this reader
	f.enc.p.CompareAndSwap(nil, ne)
	return ne.b, true
}

// seal drops f's encoding (if any) and keeps it from getting another.
func (f *Frame) seal() { f.enc.p.Store(sealed) }

// encodingRing holds a track's newest frames whose encodings are kept.
type encodingRing struct {
	frames [encodingWindow]*Frame
	next   int
}

// push adds f, sealing the frame it replaces. Under Stream.mu.
func (r *encodingRing) push(f *Frame) {
	if old := r.frames[r.next]; old != nil {
		old.seal()
	}
	r.frames[r.next] = f
	r.next = (r.next + 1) % encodingWindow
}

// reset seals and forgets every frame: a camera that went offline (or a
// closed stream) holds no frames nor encodings. Under Stream.mu.
func (r *encodingRing) reset() {
	for i, f := range r.frames {
		if f != nil {
			f.seal()
		}
		r.frames[i] = nil
	}
	r.next = 0
}
