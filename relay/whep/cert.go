package whep

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// certRenew is how long one DTLS certificate serves new sessions. pion's
// certificates are valid a month; sessions keep the one they started with.
const certRenew = 24 * time.Hour

// certSource hands every new session the same DTLS certificate (an ECDSA
// P-256 key, self-signed, as pion makes), renewed daily. Without it pion
// generates a key and a certificate per PeerConnection: CPU on the join path
// and a parsed certificate held by every session. Sharing is what browsers
// do too (one certificate per origin): DTLS keys are agreed by ECDHE, so the
// shared key only signs handshakes; peers check its fingerprint from the SDP.
type certSource struct {
	mu   sync.Mutex
	cert *webrtc.Certificate
	made time.Time
	now  func() time.Time // nil = time.Now
}

// get returns the current certificate, making one when there is none or
// it is older than certRenew.
func (c *certSource) get() (webrtc.Certificate, error) {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := now(); c.cert == nil || t.Sub(c.made) >= certRenew {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return webrtc.Certificate{}, err
		}
		cert, err := webrtc.GenerateCertificate(key)
		if err != nil {
			return webrtc.Certificate{}, err
		}
		c.cert, c.made = cert, t
	}
	return *c.cert, nil
}
