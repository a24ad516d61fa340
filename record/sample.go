package record

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Codec names a recorded format. The names equal relay.Codec's, so the
// wiring converts with Codec(string(c)).
type Codec string

// The codecs cordon re-serves, hence records.
const (
	CodecH264 Codec = "H264"
	CodecH265 Codec = "H265"
	CodecPCMU Codec = "PCMU"
	CodecPCMA Codec = "PCMA"
	CodecOpus Codec = "Opus"
	CodecAAC  Codec = "AAC"
)

// Video reports whether the codec is a video codec.
func (c Codec) Video() bool { return c == CodecH264 || c == CodecH265 }

// Track describes one elementary stream of a Feed.
type Track struct {
	Codec     Codec
	ClockRate int // audio sample rate (PCMU/PCMA 8000, Opus 48000, AAC its rate); ignored for video
	Channels  int // audio only; 0 means 1
	// ParamSets are the video parameter sets known when the feed opened
	// (H.264 {SPS, PPS}, H.265 {VPS, SPS, PPS}); may be empty when the
	// stream carries them in band before its keyframes, which is enough.
	ParamSets [][]byte
	// AACConfig is the MPEG-4 AudioSpecificConfig (AAC only).
	AACConfig []byte
}

// Sample is one video access unit or one audio frame of a Feed, sanitized
// (exactly what viewers get).
type Sample struct {
	Track int  // index into Feed.Tracks()
	Key   bool // video: a decoder can start here (IDR/IRAP); ignored for audio
	// PTS and DTS are on the feed's own continuous timeline (any origin).
	// DTS ≤ PTS; a stream without B-frames has DTS == PTS.
	PTS, DTS time.Duration
	// Data holds, for video, the NAL units of the access unit without start
	// codes (parameter sets and allow-listed SEI included, as sent); for
	// audio, one or more codec frames (G.711 sample blocks, Opus packets,
	// AAC access units). The recorder only reads it and keeps no reference
	// after the sample's fragment is written (at most about a second).
	Data [][]byte
}

// Source is one camera's sanitized stream, as the recorder reads it. The
// wiring implements it over the camera's relay stream with a reader that
// does not count as a viewer.
type Source interface {
	// Open waits until the camera is online (or ctx ends) and returns a
	// Feed. The recorder calls it again whenever a Feed ends.
	Open(ctx context.Context) (Feed, error)
}

// Feed is one connection's worth of a camera stream: its tracks do not
// change during its life.
type Feed interface {
	Tracks() []Track
	// Next blocks for the next sample. An error ends the Feed (camera gone,
	// codecs changed, ctx done); the recorder closes it and reopens.
	Next(ctx context.Context) (Sample, error)
	Close()
}

// Errors of the playback and export API, for the HTTP wiring to map
// (unknown camera 404, no recording 404, too long / bad span 400,
// corrupt 409, audit 503).
var (
	ErrUnknownCamera = errors.New("no such camera is recorded")
	ErrNoRecording   = errors.New("nothing was recorded in that span")
	ErrBadSpan       = errors.New("bad span")
	// ErrAuditUnavailable: the playback or export was refused because its
	// audit line could not be written (fail closed; 503).
	ErrAuditUnavailable = errors.New("the audit log cannot be written")
)

// CorruptError names a segment file that cannot be used.
type CorruptError struct {
	File   string // path relative to the recording directory
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("recording %s is damaged: %s", e.File, e.Reason)
}

// Limits of the playback and export API (CONTRACT "Recording and evidence").
const (
	MaxPlayback = time.Hour
	MaxExport   = 24 * time.Hour
	// SpanGap is the largest gap inside one span.
	SpanGap = 2 * time.Second
)

// TimeFormat is the layout of every time record shows: RFC 3339, UTC,
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t in TimeFormat (UTC).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }
