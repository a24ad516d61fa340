package camera

import (
	"context"
	"net/url"

	"cordon/config"
	"cordon/ingest"
)

// Source is where one stream of a camera comes from: today the camera
// itself through ingest's RTSP puller; in a cluster, a node-to-node pull of
// the owning node's re-serve. One Pull is one connection; the unit owns
// everything around it (demand, linger, reconnects, state, events).
//
// Pull forwards media to sink until the connection ends or ctx is done and
// returns why it ended: a redacted error, or context.Cause(ctx) when the
// unit stopped it (ErrIdle, ErrStopped). It must not call sink or obs after
// it returns. *ingest.Puller implements it.
type Source interface {
	Pull(ctx context.Context, sink ingest.Sink, obs ingest.Observer) error
}

// SourceSpec is what a SourceFactory gets to build the source of one stream.
type SourceSpec struct {
	Camera config.Camera
	// Stream is the stream's name: "" for the main stream, "sub" for the
	// sub stream.
	Stream string
	// URL is the stream's URL with the camera's credentials applied. Never
	// log it.
	URL *url.URL
}

// SourceFactory builds a stream's source. It is called again after every
// config change that affects pulling.
type SourceFactory func(SourceSpec) (Source, error)

// streamSpecs lists the streams a camera config asks for, main first. The
// sub stream (cameras[].sub_url, issue 14) is added here: one more spec,
// named "sub", with its own URL; everything else (stream, source, demand,
// linger, state) follows from the spec.
func streamSpecs(c config.Camera) ([]SourceSpec, error) {
	u, err := c.PullURL()
	if err != nil {
		return nil, err
	}
	specs := []SourceSpec{{Camera: c, Stream: "", URL: u}}
	sub, err := c.SubPullURL()
	if err != nil {
		return nil, err
	}
	if sub != nil {
		specs = append(specs, SourceSpec{Camera: c, Stream: SubStream, URL: sub})
	}
	return specs, nil
}

// SubStream is the name of a camera's sub stream (cameras[].sub_url).
const SubStream = "sub"

// pullSettingsEqual reports whether two configs pull the same way (URLs,
// credentials, transport, on_demand, bitrate bound), so a change elsewhere
// (the display name) does not restart the pull.
func pullSettingsEqual(a, b config.Camera) bool {
	sa, errA := a.Secret()
	sb, errB := b.Secret()
	return a.URL == b.URL && a.SubURL == b.SubURL && a.Username == b.Username && sa == sb && (errA == nil) == (errB == nil) &&
		a.PasswordFile == b.PasswordFile && a.Transport == b.Transport && a.OnDemand == b.OnDemand &&
		a.MaxBitrateMbps == b.MaxBitrateMbps
}
