package whepclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A refused POST is a StatusError with the answer; the offer is a
// browser's (recvonly video and audio, gathered candidates) and carries
// the bearer token.
func TestRefusedPost(t *testing.T) {
	var gotAuth, gotType, gotOffer string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		gotOffer = string(b)
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":"slow down"}`)
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Options{URL: hs.URL + "/whep/cam", Token: "tok"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter() != 3*time.Second || !strings.Contains(se.Body, "slow down") {
		t.Fatalf("Dial: %v", err)
	}
	if gotAuth != "Bearer tok" || gotType != "application/sdp" || !strings.Contains(gotOffer, "m=video") ||
		!strings.Contains(gotOffer, "m=audio") || !strings.Contains(gotOffer, "a=recvonly") || !strings.Contains(gotOffer, "a=candidate:") {
		t.Fatalf("request: auth %q type %q offer:\n%s", gotAuth, gotType, gotOffer)
	}
	if _, err := Dial(ctx, Options{URL: "not a url"}); err == nil {
		t.Fatal("a bad URL accepted")
	}
	audio, err := Offer(ctx, Options{AudioOnly: true, H265: true})
	if err != nil || strings.Contains(audio, "m=video") || !strings.Contains(audio, "m=audio") {
		t.Fatalf("audio-only offer: %v\n%s", err, audio)
	}
}
