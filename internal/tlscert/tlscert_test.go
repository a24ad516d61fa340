package tlscert

import (
	"crypto/tls"
	"regexp"
	"testing"
)

func TestSelfSignedIsKept(t *testing.T) {
	dir := t.TempDir()
	c1, fp1, err := Config("", "", true, dir, []string{"10.0.0.7"})
	if err != nil || c1 == nil || c1.MinVersion != tls.VersionTLS12 {
		t.Fatalf("%v %v", c1, err)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp1) {
		t.Fatalf("fingerprint %q", fp1)
	}
	_, fp2, err := Config("", "", true, dir, nil)
	if err != nil || fp2 != fp1 {
		t.Fatalf("second start: %q %v, want the same certificate", fp2, err)
	}
	if c, _, err := Config("", "", false, dir, nil); c != nil || err != nil {
		t.Fatalf("no TLS asked: %v %v", c, err)
	}
	if _, _, err := Config(dir+"/nope.pem", dir+"/nope.key", false, dir, nil); err == nil {
		t.Fatal("missing files accepted")
	}
}
