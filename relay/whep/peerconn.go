package whep

import (
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// newPeerConnection builds a per-session API: a MediaEngine with exactly the
// chosen codecs and the two light interceptors: sender reports and the
// retransmission index (rtx.go). The session's ICE credentials are chosen
// here, so the UDP mux knows which session a conn it hands out belongs to
// and batches its writes (cork.go); ufrag is returned to forget it later.
// Every session presents the server's one DTLS certificate (cert.go).
func (s *Server) newPeerConnection(picks []pick) (pc *webrtc.PeerConnection, cork *corkGroup, ufrag string, err error) {
	me := &webrtc.MediaEngine{}
	for _, p := range picks {
		if err := me.RegisterCodec(p.codec, p.kind); err != nil {
			return nil, nil, "", err
		}
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, nil, "", err
	}
	reg.Add(sr)
	reg.Add(rtxFactory{m: s.Metrics.rtx})
	se := s.settings // a copy: the credentials are this session's
	ufrag = randHex(12)
	se.SetICECredentials(ufrag, randHex(16))
	cork = s.udpMux.cork(ufrag)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	cert, err := s.certs.get()
	if err != nil {
		return nil, nil, "", err
	}
	conf := webrtc.Configuration{Certificates: []webrtc.Certificate{cert}}
	if len(s.ICEServers) > 0 {
		conf.ICEServers = []webrtc.ICEServer{{URLs: s.ICEServers}}
	}
	pc, err = api.NewPeerConnection(conf)
	if err != nil {
		s.udpMux.forget(ufrag)
		return nil, nil, "", err
	}
	return pc, cork, ufrag, nil
}
