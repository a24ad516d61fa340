// Package e2eutil holds the fixtures cordon's end-to-end tests share: a
// gateway running from a real config on loopback, sign-in, and a WHEP
// viewer that behaves like a browser (pion, recvonly, full ICE) and records
// exactly what arrives.
package e2eutil

import (
	"bytes"
	"context"
	"cordon/internal/testtool"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"cordon/auth"
	"cordon/config"
	"cordon/gateway"
)

// Account is a principal of the test gateway with its clear-text secret.
type Account struct {
	Name     string
	Password string
	Cameras  []string
	Admin    bool
	APIKey   bool // an API key instead of a user
}

var (
	hashMu    sync.Mutex
	hashCache = map[string]string{}
)

// Hash returns the argon2id hash of a secret (cached: tests reuse secrets).
func Hash(t testing.TB, secret string) string {
	t.Helper()
	hashMu.Lock()
	defer hashMu.Unlock()
	if h, ok := hashCache[secret]; ok {
		return h
	}
	h, err := auth.HashSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	hashCache[secret] = h
	return h
}

// Config returns a valid config on ephemeral loopback ports with the given
// accounts and cameras (URLs with credentials in Username/Password).
func Config(t testing.TB, accounts []Account, cams []config.Camera) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTSP.Listen = "127.0.0.1:0"
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", "" // tests that need UDP pick free ports
	cfg.WebRTC.UDPListen = "127.0.0.1:0"
	cfg.WebRTC.TCPListen = "127.0.0.1:0"
	cfg.WebRTC.HostIPs = []string{"127.0.0.1"}
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Audit.Path = filepath.Join(dir, "audit.log")
	for _, a := range accounts {
		if a.APIKey {
			cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, config.APIKey{Name: a.Name, KeyHash: Hash(t, a.Password), Cameras: a.Cameras})
		} else {
			cfg.Auth.Users = append(cfg.Auth.Users, config.User{Name: a.Name, PasswordHash: Hash(t, a.Password), Cameras: a.Cameras, Admin: a.Admin})
		}
	}
	cfg.Cameras = cams
	return cfg
}

// Gateway is a running gateway for a test.
type Gateway struct {
	*gateway.Gateway
	Base   string // http://127.0.0.1:port
	Config *config.Config
	Logs   *SyncBuffer // everything the gateway logged (JSON lines)
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer = testtool.SyncBuffer

// Start validates cfg and runs a gateway until the test ends. Logs go
// through the same redacting handler the command uses.
func Start(t testing.TB, cfg *config.Config) *Gateway {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("invalid test config: %v", errs)
	}
	logs := &SyncBuffer{}
	red := config.NewRedactor(cfg)
	logger := slog.New(config.NewRedactingHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}), red))
	g := &gateway.Gateway{Config: cfg, Logger: logger, Redactor: red, Stdout: logs}
	if err := g.Initialize(); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(g.Close)
	return &Gateway{Gateway: g, Base: "http://" + g.HTTPAddr(), Config: cfg, Logs: logs}
}

// Login signs in and returns the session token.
func Login(t testing.TB, base, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		t.Fatalf("login answer %s: %v", b, err)
	}
	return out.Token
}

// Do sends a request with an optional bearer token and returns status and body.
func Do(t testing.TB, method, url, token, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// AU is one video access unit a viewer received.
type AU struct {
	NALUs [][]byte
	TS    uint32
	At    time.Time
}

// Viewer is a browser-like WHEP client.
type Viewer struct {
	PC       *webrtc.PeerConnection
	Location string
	Answer   string
	AUs      chan AU

	mu          sync.Mutex
	packets     []rtp.Header // headers of every video packet (for inspection)
	audioPkts   int
	videoCodec  string
	audioCodec  string
	lastSeq     uint16
	haveSeq     bool
	seqGaps     int
	tsBackwards int
	lastTS      uint32
	wg          sync.WaitGroup
	base, token string
}

// ViewerOptions tune Dial.
type ViewerOptions struct {
	TCPOnly bool
	NoRead  bool // never drain the tracks: a stalled viewer
	H265    bool // offer H.265 (like Safari 18+ or Chrome with hardware support)
}

// browserCodecs is what a typical browser offers: VP8, H.264 in several
// profiles, Opus, PCMU, PCMA; H.265 only where the browser has it.
func browserCodecs(h265 bool) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 106},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"}, PayloadType: 112},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"}, PayloadType: 114},
	}
	if h265 {
		video = append(video, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000}, PayloadType: 116})
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	return me, nil
}

// Dial opens a WHEP session like a browser. It returns the viewer (nil if
// the POST was refused) and the POST's status and body.
func Dial(t testing.TB, base, camera, token string, o ViewerOptions) (*Viewer, int, string) {
	t.Helper()
	me, err := browserCodecs(o.H265)
	if err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &Viewer{PC: pc, AUs: make(chan AU, 4096), base: base, token: token}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if o.NoRead {
			return
		}
		v.wg.Add(1)
		defer v.wg.Done()
		mime := tr.Codec().MimeType
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			v.mu.Lock()
			v.audioCodec = mime
			v.mu.Unlock()
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				v.mu.Lock()
				v.audioPkts++
				v.mu.Unlock()
			}
		}
		v.mu.Lock()
		v.videoCodec = mime
		v.mu.Unlock()
		var decode func(*rtp.Packet) ([][]byte, error)
		if strings.EqualFold(mime, webrtc.MimeTypeH265) {
			d := &rtph265.Decoder{}
			_ = d.Init()
			decode = d.Decode
		} else {
			d := &rtph264.Decoder{PacketizationMode: 1}
			_ = d.Init()
			decode = d.Decode
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.record(pkt)
			nalus, err := decode(pkt)
			if err != nil {
				continue
			}
			select {
			case v.AUs <- AU{NALUs: nalus, TS: pkt.Timestamp, At: time.Now()}:
			default:
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	status, hdr, body := Do(t, http.MethodPost, base+"/whep/"+camera, token, "application/sdp", pc.LocalDescription().SDP)
	if status != http.StatusCreated {
		_ = pc.Close()
		return nil, status, body
	}
	v.Answer = body
	v.Location = hdr.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, status, body
}

func (v *Viewer) record(p *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.packets) < 100000 {
		v.packets = append(v.packets, p.Header.Clone())
	}
	if v.haveSeq {
		if p.SequenceNumber != v.lastSeq+1 {
			v.seqGaps++
		}
		if int32(p.Timestamp-v.lastTS) < 0 {
			v.tsBackwards++
		}
	}
	v.haveSeq, v.lastSeq, v.lastTS = true, p.SequenceNumber, p.Timestamp
}

// Headers returns copies of the headers of the video packets received.
func (v *Viewer) Headers() []rtp.Header {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]rtp.Header(nil), v.packets...)
}

// Continuity returns sequence gaps and backward timestamp steps seen.
func (v *Viewer) Continuity() (seqGaps, tsBackwards int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seqGaps, v.tsBackwards
}

// Codecs returns the negotiated video and audio MIME types seen.
func (v *Viewer) Codecs() (video, audio string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.videoCodec, v.audioCodec
}

// AudioPackets returns how many audio packets arrived.
func (v *Viewer) AudioPackets() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.audioPkts
}

// NextAU waits for the next access unit.
func (v *Viewer) NextAU(t testing.TB, within time.Duration) AU {
	t.Helper()
	select {
	case au := <-v.AUs:
		return au
	case <-time.After(within):
		t.Fatalf("no video access unit within %v", within)
	}
	return AU{}
}

// Delete ends the session with WHEP DELETE and returns the status.
func (v *Viewer) Delete(t testing.TB) int {
	t.Helper()
	status, _, _ := Do(t, http.MethodDelete, v.base+v.Location, v.token, "", "")
	return status
}

// Close closes the peer connection and waits for its readers.
func (v *Viewer) Close() {
	_ = v.PC.Close()
	v.wg.Wait()
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", within, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// AnnexB joins access units into an Annex-B byte stream (for ffmpeg).
func AnnexB(aus []AU) []byte {
	var b bytes.Buffer
	for _, au := range aus {
		for _, n := range au.NALUs {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
	}
	return b.Bytes()
}

// H264Types lists the NAL unit types of an H.264 access unit.
func H264Types(au [][]byte) []int {
	out := make([]int, len(au))
	for i, n := range au {
		if len(n) > 0 {
			out[i] = int(n[0] & 0x1f)
		}
	}
	return out
}
