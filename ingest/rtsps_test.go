package ingest

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"cordon/democam"
	"cordon/internal/testtool"
	"cordon/internal/testtool/testca"
)

// rtspsRig is a hostile-kit camera speaking RTSPS with a certificate from
// a throw-away CA, and the client configuration that trusts that CA.
type rtspsRig struct {
	serve *tls.Config
	trust *tls.Config
}

func newRTSPSRig(t *testing.T, host string) *rtspsRig {
	t.Helper()
	ca, err := testca.New(t.TempDir(), "camera-ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("camera", host)
	if err != nil {
		t.Fatal(err)
	}
	return &rtspsRig{
		serve: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12},
		trust: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
	}
}

func (r *rtspsRig) camera(t *testing.T, h *democam.HostileCamera, trusted bool, mod func(*Puller)) *hostileCam {
	t.Helper()
	if !strings.HasPrefix(h.URL(), "rtsps://") {
		t.Fatalf("the camera serves %s", h.URL())
	}
	return newPullLoop(t, "rtsps://admin:"+hostilePassword+"@"+h.Addr()+"/stream", func(c *Puller) {
		if trusted {
			c.TLSConfig = r.trust
		}
		if mod != nil {
			mod(c)
		}
	})
}

// TestRTSPSCamera: an rtsps:// camera is read through the stream guard on
// the plaintext side of TLS. Guarding the TCP connection under TLS fed the
// tokenizer ciphertext, which cut honest cameras off within a second
// (bogus header_size violations after 80-640 KB).
func TestRTSPSCamera(t *testing.T) {
	const host = "127.0.0.9"
	r := newRTSPSRig(t, host)
	withTLS := func(mbps int) func(*democam.HostileCamera) {
		return func(h *democam.HostileCamera) { h.TLS = r.serve; h.FloodMbps = mbps }
	}

	t.Run("honest camera streams megabytes", func(t *testing.T) {
		// filler NAL units bring the stream to 16 Mbit/s (the bitrate bound
		// is 64): 8 MiB of RTSP through TLS
		h := startHostile(t, host, democam.Attacks{BitrateFlood: true}, withTLS(16))
		hc := r.camera(t, h, true, nil)
		testtool.Recv(t, hc.sink.connCh, 10*time.Second, "the camera connected")
		testtool.WaitFor(t, 60*time.Second, "8 MiB through TLS, or a violation", func() bool {
			reasons, _ := hc.rec.snapshot()
			return h.BytesSent() >= 8<<20 || len(reasons) > 0
		})
		if reasons, details := hc.rec.snapshot(); len(reasons) > 0 {
			t.Fatalf("an honest rtsps camera was cut off after %d bytes: %q %q", h.BytesSent(), reasons, details)
		}
		if _, tr, _ := hc.obs.get(); tr != "TCP" || hc.lastError() != "" {
			t.Fatalf("transport %q, last error %q", tr, hc.lastError())
		}
		testtool.WaitFor(t, 10*time.Second, "60 video units", func() bool { v, _ := hc.sink.count(); return v >= 60 })
		if n := h.Connections(); n != 1 {
			t.Fatalf("%d connections: the camera was reconnected", n)
		}
	})

	t.Run("bounds hold inside TLS", func(t *testing.T) {
		h := startHostile(t, host, democam.Attacks{GiantHeaders: true}, withTLS(0))
		hc := r.camera(t, h, true, nil)
		if msg := hc.waitViolation(t, ReasonHeaderSize, 20*time.Second); !strings.Contains(msg, "headers exceed") {
			t.Fatalf("last error %q", msg)
		}
	})

	t.Run("certificate verified", func(t *testing.T) {
		// nil TLSConfig: the system roots, which do not hold the test CA
		h := startHostile(t, host, democam.Attacks{}, withTLS(0))
		hc := r.camera(t, h, false, nil)
		testtool.WaitFor(t, 10*time.Second, "a last error", func() bool { return hc.lastError() != "" })
		if msg := hc.lastError(); !strings.Contains(msg, "certificate") {
			t.Fatalf("last error %q does not name the certificate", msg)
		}
		if n := h.AuthorizedRequests(); n != 0 {
			t.Fatalf("the credentials reached an unverified camera %d times", n)
		}
	})
}
