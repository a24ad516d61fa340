package gateway

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"cordon/relay"
	"cordon/relay/onvifserve"
)

// streamInfo describes a stream as the face shows it: the codec, and the
// size and frame rate from the current SPS (the camera's, as sanitized),
// zero while unknown (a camera that never connected).
func streamInfo(s *relay.Stream) onvifserve.Stream {
	for _, t := range s.Info().Tracks {
		if t.Kind != relay.KindVideo {
			continue
		}
		out := onvifserve.Stream{Codec: string(t.Codec)}
		switch t.Codec {
		case relay.CodecH264:
			if len(t.ParamSets) > 0 {
				var sps h264.SPS
				if sps.Unmarshal(t.ParamSets[0]) == nil {
					out.Width, out.Height, out.FPS = sps.Width(), sps.Height(), sps.FPS()
				}
			}
		case relay.CodecH265:
			if len(t.ParamSets) > 1 {
				var sps h265.SPS
				if sps.Unmarshal(t.ParamSets[1]) == nil {
					out.Width, out.Height, out.FPS = sps.Width(), sps.Height(), sps.FPS()
				}
			}
		}
		if out.Width < 0 || out.Width > 1<<15 || out.Height < 0 || out.Height > 1<<15 {
			out.Width, out.Height = 0, 0 // a hostile SPS: say "unknown"
		}
		if out.FPS < 0 || out.FPS > 1000 || out.FPS != out.FPS {
			out.FPS = 0
		}
		return out
	}
	return onvifserve.Stream{}
}

// loginDedup remembers when a login_ok line was last written per key
// (kind, name, address), so a client that signs in on every request
// writes one line per interval. Bounded: when full, expired keys go; if
// none has expired, nothing is remembered and the line is written (more
// audit, never less).
type loginDedup struct {
	every time.Duration
	max   int

	mu   sync.Mutex
	last map[string]time.Time
}

func newLoginDedup(every time.Duration, max int) *loginDedup {
	return &loginDedup{every: every, max: max, last: map[string]time.Time{}}
}

// due reports whether key's line is to be written now.
func (d *loginDedup) due(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.last[key]
	return !ok || now.Sub(t) >= d.every || now.Before(t)
}

// done records that key's line was written at now.
func (d *loginDedup) done(key string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.last[key]; !ok && len(d.last) >= d.max {
		for k, t := range d.last {
			if now.Sub(t) >= d.every || now.Before(t) {
				delete(d.last, k)
			}
		}
		if len(d.last) >= d.max {
			return
		}
	}
	d.last[key] = now
}

// version is the build's version for the ONVIF device information: the
// VCS revision when the binary has one, else "dev".
func (g *Gateway) version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "dev"
}
