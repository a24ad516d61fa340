package whep

import (
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// newPeerConnection builds a per-session API: a MediaEngine with exactly the
// chosen codecs and the two light interceptors: sender reports and the
// retransmission index (rtx.go).
func (s *Server) newPeerConnection(picks []pick) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	for _, p := range picks {
		if err := me.RegisterCodec(p.codec, p.kind); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(sr)
	reg.Add(rtxFactory{m: s.Metrics.rtx})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(s.settings), webrtc.WithInterceptorRegistry(reg))
	conf := webrtc.Configuration{}
	if len(s.ICEServers) > 0 {
		conf.ICEServers = []webrtc.ICEServer{{URLs: s.ICEServers}}
	}
	return api.NewPeerConnection(conf)
}
