package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"

	"cordon/relay/sanitize"
)

// errMore means the decoder needs more packets for a unit (not an error).
var errMore = errors.New("more packets needed")

func newDecoder(f format.Format) (func(*rtp.Packet) ([][]byte, error), error) {
	switch f := f.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				return nil, errMore
			}
			return au, err
		}, nil
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				return nil, errMore
			}
			return au, err
		}, nil
	case *format.G711:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return oneFrame(d.Decode), nil
	case *format.Opus:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		// Opus padding can carry anything: it never leaves
		return oneFrame(func(p *rtp.Packet) ([]byte, error) {
			b, err := d.Decode(p)
			if err != nil {
				return nil, err
			}
			return sanitize.CleanOpus(b)
		}), nil
	case *format.MPEG4Audio:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			aus, err := d.Decode(p)
			if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				return nil, errMore
			}
			return aus, err
		}, nil
	}
	return nil, fmt.Errorf("no decoder for %T", f)
}

// oneFrame adapts a decoder that yields one audio frame per packet.
func oneFrame(decode func(*rtp.Packet) ([]byte, error)) func(*rtp.Packet) ([][]byte, error) {
	return func(p *rtp.Packet) ([][]byte, error) {
		b, err := decode(p)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
}

// toDuration converts clock-rate ticks to a duration without overflowing.
func toDuration(ticks, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	sec := ticks / rate
	rem := ticks % rate
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}
