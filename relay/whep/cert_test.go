package whep

import (
	"regexp"
	"testing"
	"time"
)

var fingerprintRe = regexp.MustCompile(`(?m)^a=fingerprint:(\S+ \S+)\r?$`)

// Two sessions present the same DTLS certificate (the answers' fingerprints
// match) and both complete DTLS and play.
func TestSessionsShareDTLSCertificate(t *testing.T) {
	e := newEnv(t, nil)
	cam := startCamera(t, e.hub, "cam1")
	defer cam.stop()
	var prints []string
	for range 2 {
		c, resp := newClient(t, e, "cam1", clientOpts{})
		if c == nil {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		checkSPSPPSIDR(t, c.nextAU(t, 10*time.Second))
		m := fingerprintRe.FindStringSubmatch(c.answer)
		if m == nil {
			t.Fatalf("no fingerprint in the answer:\n%s", c.answer)
		}
		prints = append(prints, m[1])
	}
	if prints[0] != prints[1] {
		t.Fatalf("sessions present different certificates: %s and %s", prints[0], prints[1])
	}
}

// The shared certificate is renewed once it has served certRenew; until
// then the same one is handed out.
func TestCertSourceRenews(t *testing.T) {
	now := time.Now()
	c := &certSource{now: func() time.Time { return now }}
	fp := func() string {
		t.Helper()
		cert, err := c.get()
		if err != nil {
			t.Fatal(err)
		}
		f, err := cert.GetFingerprints()
		if err != nil || len(f) == 0 {
			t.Fatalf("fingerprints: %v %v", f, err)
		}
		if !cert.Expires().After(now.Add(certRenew)) {
			t.Fatalf("certificate expires %v, before its renewal", cert.Expires())
		}
		return f[0].Value
	}
	first := fp()
	now = now.Add(certRenew - time.Minute)
	if fp() != first {
		t.Fatal("renewed before certRenew")
	}
	now = now.Add(2 * time.Minute)
	if fp() == first {
		t.Fatal("not renewed after certRenew")
	}
}
