package relay

// gopCache keeps the frames of one video track since its last keyframe, so
// a new reader starts on a keyframe at once instead of waiting up to a GOP.
// It is used only under Stream.mu.
type gopCache struct {
	frames    []*Frame
	bytes     int
	valid     bool // frames start with a keyframe
	track     int  // the first video track seen; -1 before
	maxBytes  int
	maxFrames int
}

func (g *gopCache) reset() {
	clear(g.frames)
	g.frames = g.frames[:0]
	g.bytes = 0
	g.valid = false
}

// add caches a video frame. A keyframe starts a new GOP; a GOP past the
// bounds is dropped until the next keyframe.
func (g *gopCache) add(f *Frame) {
	if g.track == -1 {
		g.track = f.Track
	}
	if f.Track != g.track {
		return
	}
	if f.Key {
		g.reset()
		g.valid = true
	}
	if !g.valid {
		return
	}
	if g.bytes+f.Bytes > g.maxBytes || len(g.frames) >= g.maxFrames {
		g.reset()
		return
	}
	g.frames = append(g.frames, f)
	g.bytes += f.Bytes
}

// usable reports whether a reader wanting these tracks can start from the
// cache.
func (g *gopCache) usable(want []bool) bool {
	return g.valid && len(g.frames) > 0 && g.track >= 0 && g.track < len(want) && want[g.track]
}
