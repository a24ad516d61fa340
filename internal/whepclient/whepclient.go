// Package whepclient is a WHEP viewer that behaves like a browser: a pion
// PeerConnection with recvonly video and audio, a browser's codec list,
// full ICE gathering before the POST, and a record of exactly what arrives
// (access units, RTP header continuity, codecs, time to the first
// keyframe). The tests of several packages and the load tool
// (cmd/cordon-load) share it; it lives in internal/ because none of them
// owns it, and apart from the tests' helpers so the load tool does not
// link the testing package.
package whepclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Options configure Dial.
type Options struct {
	// URL is the WHEP endpoint, e.g. http://host:8080/whep/lobby.
	URL string
	// Token is the bearer token ("" = no Authorization header).
	Token string
	// HTTP sends the requests (nil = http.DefaultClient).
	HTTP    *http.Client
	TCPOnly bool // ICE over TCP only (a firewalled console)
	H265    bool // offer H.265 too (Safari 18+, Chrome with hardware support)
	NoRead  bool // never read the tracks: a stalled viewer
	// AudioOnly offers no video m-line (Offer only: the gateway refuses it).
	AudioOnly bool
	// RewriteOffer and RewriteAnswer edit the SDP on its way (tests that
	// route media through a proxy or strip candidates).
	RewriteOffer  func(string) string
	RewriteAnswer func(string) string
	// BeforePost runs after ICE gathering, right before the POST.
	BeforePost func()
	// AUQueue bounds the AUs channel (default 4096; full = dropped).
	AUQueue int
	// Light stops handing video RTP to pion once the first keyframe access
	// unit is decoded: later packets are only counted from their clear
	// header (Wire), which lets one core hold hundreds of viewers (see
	// wire.go for what is skipped).
	Light bool
	// Poller, with Light, reads the sockets once the first keyframe has
	// arrived (poller.go): hundreds of viewers on one core. nil: each
	// viewer reads its own sockets.
	Poller *Poller
	// NoHeaders keeps no copy of the video RTP headers (Headers is empty):
	// a long-running load viewer would hold megabytes of them.
	NoHeaders bool
	// NoInterceptors drops pion's default receiver interceptors (NACK
	// generator, receiver reports, TWCC): a packet lost is then lost, not
	// recovered by a retransmission, which is what a measurement of the
	// sender's pacing needs. Without it the client NACKs like a browser.
	NoInterceptors bool
	// ReadBuffer sets the receive buffer of the client's UDP sockets
	// (SO_RCVBUF; the kernel caps it at net.core.rmem_max); 0 keeps the
	// system default (212992 bytes on Linux), as a browser has.
	ReadBuffer int
	// DropVideo, when set, is asked about every video RTP datagram before
	// pion sees it; true drops it (a lost packet, for tests of
	// retransmission). Called from the socket readers.
	DropVideo func(seq uint16) bool
	// DropDTLS, when set, is asked about every DTLS datagram received
	// (the handshake included), n counting from 1; true drops it (a lost
	// handshake flight, for tests of retransmission). Called from the
	// socket readers.
	DropDTLS func(n int) bool
}

// AU is one video access unit as received.
type AU struct {
	NALUs [][]byte
	TS    uint32    // RTP timestamp
	At    time.Time // arrival
	Key   bool      // holds an IDR (H.264) or IRAP (H.265) slice
}

// StatusError is a POST answered with another status than 201.
type StatusError struct {
	Status int
	Body   string
	Header http.Header
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("POST: %d %s", e.Status, strings.TrimSpace(e.Body))
}

// RetryAfter is the answer's Retry-After (0 when absent).
func (e *StatusError) RetryAfter() time.Duration {
	s, err := strconv.Atoi(e.Header.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// Client is one WHEP session.
type Client struct {
	PC       *webrtc.PeerConnection
	Location string // the session's URL path (Location header)
	Answer   string
	Posted   time.Time // when the POST was sent

	endpoint *url.URL
	token    string
	http     *http.Client
	wire     *wire
	light    bool
	noHdrs   bool
	aus      chan AU
	ended    chan error // closed with the reason when the PeerConnection fails or closes
	endOnce  sync.Once
	endErr   error
	wg       sync.WaitGroup

	mu      sync.Mutex
	st      Stats
	headers []rtp.Header
	lastSeq uint16
	lastTS  uint32
	haveSeq bool
}

// Dial offers a session like a browser and returns it once the answer is
// applied; a refused POST is a *StatusError.
func Dial(ctx context.Context, o Options) (*Client, error) {
	endpoint, err := url.Parse(o.URL)
	if err != nil || endpoint.Host == "" {
		return nil, fmt.Errorf("WHEP URL %q: want http(s)://host:port/whep/{camera}", o.URL)
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.AUQueue <= 0 {
		o.AUQueue = 4096
	}
	w := &wire{rcvbuf: o.ReadBuffer, drop: o.DropVideo, dropDTLS: o.DropDTLS}
	if o.Light {
		w.poller = o.Poller
	}
	pc, err := newPeerConnection(o, w)
	if err != nil {
		return nil, err
	}
	c := &Client{PC: pc, endpoint: endpoint, token: o.Token, http: o.HTTP, aus: make(chan AU, o.AUQueue), ended: make(chan error),
		wire: w, light: o.Light, noHdrs: o.NoHeaders}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			c.phase(&c.st.ICEConnected)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.phase(&c.st.Connected)
		}
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			c.end(fmt.Errorf("peer connection %s", s))
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if o.NoRead {
			return
		}
		c.wg.Add(1)
		defer c.wg.Done()
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			c.readAudio(tr)
			return
		}
		c.readVideo(tr)
	})
	if err := c.post(ctx, o); err != nil {
		_ = pc.Close()
		c.wg.Wait()
		return nil, err
	}
	return c, nil
}

func newPeerConnection(o Options, w *wire) (*webrtc.PeerConnection, error) {
	me, err := browserCodecs(o.H265)
	if err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	if w != nil {
		n, err := newWireNet(w)
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	opts := []func(*webrtc.API){webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)}
	if o.NoInterceptors {
		opts = append(opts, webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	}
	pc, err := webrtc.NewAPI(opts...).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio}
	if o.AudioOnly {
		kinds = kinds[1:]
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	return pc, nil
}

// Offer returns the offer Dial would send (all candidates gathered)
// without sending it, for tests that make their own requests.
func Offer(ctx context.Context, o Options) (string, error) {
	pc, err := newPeerConnection(o, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = pc.Close() }()
	return gatheredOffer(ctx, pc)
}

// gatheredOffer creates the offer and waits for ICE gathering.
func gatheredOffer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// post gathers every candidate, POSTs the offer and applies the answer.
func (c *Client) post(ctx context.Context, o Options) error {
	sdp, err := gatheredOffer(ctx, c.PC)
	if err != nil {
		return err
	}
	if o.RewriteOffer != nil {
		sdp = o.RewriteOffer(sdp)
	}
	if o.BeforePost != nil {
		o.BeforePost()
	}
	c.mu.Lock()
	c.Posted = time.Now()
	c.mu.Unlock()
	status, hdr, body, err := c.do(ctx, http.MethodPost, c.endpoint.String(), "application/sdp", sdp)
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return &StatusError{Status: status, Body: body, Header: hdr}
	}
	c.phase(&c.st.Answered)
	c.Location = hdr.Get("Location")
	c.Answer = body
	if o.RewriteAnswer != nil {
		body = o.RewriteAnswer(body)
	}
	for _, pt := range videoPTs(body) {
		c.wire.setVideoPT(pt)
	}
	return c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body})
}

// do sends one request with the client's token.
func (c *Client) do(ctx context.Context, method, u, ctype, body string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b), nil
}

// SessionURL is the session's absolute URL (the Location resolved against
// the endpoint).
func (c *Client) SessionURL() string {
	loc, err := url.Parse(c.Location)
	if err != nil {
		return ""
	}
	return c.endpoint.ResolveReference(loc).String()
}

// Delete ends the session (WHEP DELETE) and returns the status.
func (c *Client) Delete(ctx context.Context) (int, error) {
	status, _, _, err := c.do(ctx, http.MethodDelete, c.SessionURL(), "", "")
	return status, err
}

// Patch sends a trickle-ICE fragment and returns the status.
func (c *Client) Patch(ctx context.Context, ctype, frag string) (int, error) {
	status, _, _, err := c.do(ctx, http.MethodPatch, c.SessionURL(), ctype, frag)
	return status, err
}

// AUs delivers the video access units as they complete.
func (c *Client) AUs() <-chan AU { return c.aus }

// Ended is closed when the PeerConnection failed or closed; Err says why.
func (c *Client) Ended() <-chan error { return c.ended }

// Err is why the session ended (nil while it runs).
func (c *Client) Err() error {
	select {
	case <-c.ended:
		return c.endErr
	default:
		return nil
	}
}

func (c *Client) end(err error) {
	c.endOnce.Do(func() {
		c.endErr = err
		close(c.ended)
	})
}

// Close closes the PeerConnection and waits for its readers.
func (c *Client) Close() {
	_ = c.PC.Close()
	c.wg.Wait()
}
