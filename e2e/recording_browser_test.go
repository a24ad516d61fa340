package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// recPlaybackStats is window.cordonPlayback() (web/assets/timeline.js).
type recPlaybackStats struct {
	Mode          string  `json:"mode"`
	State         string  `json:"state"`
	Position      string  `json:"position"`
	ClipStart     string  `json:"clipStart"`
	CurrentTime   float64 `json:"currentTime"`
	Paused        bool    `json:"paused"`
	FramesDecoded float64 `json:"framesDecoded"`
	Width         float64 `json:"width"`
	Error         string  `json:"error"`
	Via           string  `json:"via"`
	Spans         []struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"spans"`
	LastExport *struct {
		Status int    `json:"status"`
		ID     string `json:"id"`
		URL    string `json:"url"`
		Error  string `json:"error"`
		Bytes  int64  `json:"bytes"`
	} `json:"lastExport"`
}

func recBrowserStats(t *testing.T, ctx context.Context) recPlaybackStats {
	t.Helper()
	var raw json.RawMessage
	if err := chromedp.Run(ctx, chromedp.Evaluate(`JSON.stringify(window.cordonPlayback && window.cordonPlayback())`, &raw)); err != nil {
		t.Fatalf("cordonPlayback(): %v", err)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("cordonPlayback() %s: %v", raw, err)
	}
	var out recPlaybackStats
	if s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			t.Fatalf("cordonPlayback() %s: %v", s, err)
		}
	}
	return out
}

// TestRecordingInBrowser: the viewer in headless chromium, signed in as an
// investigator: the camera's Recordings panel shows its spans on the 24 h
// timeline; a click on the span plays the recording (through the playback
// service worker, which adds the Authorization header to the <video>'s
// Range requests: no token in any URL), a seek lands where asked and keeps
// decoding, "Back to live" stops it, and the export form builds an export
// and downloads it. Then the same with the worker turned off (the Blob
// fallback for pages without service workers). A user with only the view
// right gets no playback. No CSP violation or script error throughout.
// Screenshots: e2e/artifacts/recording-playback.png, recording-browser.png.
func TestRecordingInBrowser(t *testing.T) {
	dir := t.TempDir()
	_, cam := recCam(t, "rec-v", "127.0.0.145", true, true)
	cfg := recConfig(t, dir, []config.Camera{cam})
	cfgPath := filepath.Join(dir, "cordon.yaml")
	g := drStart(t, cfg, cfgPath)
	tok := e2eutil.Login(t, g.Base, "olivia", "olivia-pw")
	span := recWaitRecorded(t, g.Base, tok, "rec-v", 8*time.Second, 60*time.Second)

	ctx := testtool.Browser(t, 180*time.Second)
	problems := testtool.WatchPage(ctx)
	// a control room in the UK: local time is GMT or BST
	if err := chromedp.Run(ctx, emulation.SetTimezoneOverride("Europe/London")); err != nil {
		t.Fatal(err)
	}
	recBrowserSignIn(t, ctx, g.Base, "olivia", "olivia-pw", false)
	recOpenRecordings(t, ctx, "rec-v")

	// a click on the span plays it
	recWaitPlayback(t, ctx, "the span on the timeline", func(s recPlaybackStats) bool { return len(s.Spans) == 1 })
	var xy []float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => {
  const r = document.querySelector('.rec-span').getBoundingClientRect();
  return [r.left + 1, r.top + r.height / 2];
})()`, &xy)); err != nil || len(xy) != 2 {
		t.Fatalf("the recorded span on the timeline: %v %v", xy, err)
	}
	if err := chromedp.Run(ctx, chromedp.MouseClickXY(xy[0], xy[1])); err != nil {
		t.Fatal(err)
	}
	st := recWaitPlayback(t, ctx, "the clicked span plays", func(s recPlaybackStats) bool {
		return s.Mode == "playback" && !s.Paused && s.FramesDecoded >= 10 && s.Width > 0
	})
	if st.Via != "worker" {
		t.Fatalf("playback went %q, want through the service worker", st.Via)
	}
	clipStart, _ := time.Parse(time.RFC3339Nano, st.ClipStart)
	if clipStart.Before(span.Start.Add(-time.Millisecond)) || clipStart.After(span.Start.Add(3*time.Second)) {
		t.Fatalf("the clip starts at %s, the span at %s", st.ClipStart, span.Start)
	}

	// seek within the clip (what the native controls do): Range requests
	// through the worker, decoding goes on from there
	target := span.Duration().Seconds() - 3
	if err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelector('.rec-video').currentTime = %f`, target), nil)); err != nil {
		t.Fatal(err)
	}
	before := st.FramesDecoded
	st = recWaitPlayback(t, ctx, "decoding after the seek", func(s recPlaybackStats) bool {
		return s.CurrentTime >= target && s.CurrentTime < target+2.5 && s.FramesDecoded >= before+5
	})
	pos, _ := time.Parse(time.RFC3339Nano, st.Position)
	if d := pos.Sub(clipStart.Add(time.Duration(target * float64(time.Second)))); d < 0 || d > 2500*time.Millisecond {
		t.Fatalf("after seeking to %.1f s the timeline shows %s (clip from %s)", target, st.Position, st.ClipStart)
	}
	var timeText string
	_ = chromedp.Run(ctx, chromedp.Text(".rec-time", &timeText, chromedp.ByQuery))
	if !recHasBothZones(timeText) || !(strings.HasSuffix(timeText, " GMT") || strings.HasSuffix(timeText, " BST")) {
		t.Fatalf("time shown %q: want UTC and UK local time (GMT/BST)", timeText)
	}

	testtool.Screenshot(t, ctx, e2eArtifacts, "recording-playback.png")

	// back to live
	if err := chromedp.Run(ctx, chromedp.Click(".rec-live", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	recWaitPlayback(t, ctx, "back to live", func(s recPlaybackStats) bool { return s.Mode == "live" })

	// export through the form, then download
	reason := "Incident 2026/77 (browser)"
	if err := chromedp.Run(ctx,
		chromedp.Click(".rec-export-open", chromedp.ByQuery),
		chromedp.SetValue(".rec-from", span.Start.Format(time.RFC3339), chromedp.ByQuery),
		chromedp.SetValue(".rec-to", span.End.Format(time.RFC3339Nano), chromedp.ByQuery),
		chromedp.SetValue(".rec-reason", reason, chromedp.ByQuery),
		chromedp.Click(".rec-create", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	st = recWaitPlayback(t, ctx, "the export built", func(s recPlaybackStats) bool { return s.LastExport != nil })
	if st.LastExport.Status != 201 || len(st.LastExport.ID) != 32 {
		t.Fatalf("export from the viewer: %+v", *st.LastExport)
	}
	if err := chromedp.Run(ctx, chromedp.Click(".rec-download", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	st = recWaitPlayback(t, ctx, "the export downloaded", func(s recPlaybackStats) bool { return s.LastExport.Bytes > 0 })
	if code, _, zip := recGet(t, g.Base+st.LastExport.URL, tok, nil); code != 200 || int64(len(zip)) != st.LastExport.Bytes {
		t.Fatalf("the page downloaded %d bytes, the export is %d bytes (%d)", st.LastExport.Bytes, len(zip), code)
	}
	m := recManifestOf(t, g.Base+st.LastExport.URL, tok, dir)
	if m.Reason != reason || m.Principal != "olivia" {
		t.Fatalf("manifest of the viewer's export: %+v", m)
	}
	testtool.Screenshot(t, ctx, e2eArtifacts, "recording-browser.png")

	// leaving the page still ends its live session at once (the browser
	// closes the peer connection, the keepalive DELETE follows): the
	// playback worker takes no part in any other request of the page
	// (web's TestPlaybackWorker counts the DELETE itself)
	ended := func() int {
		n := 0
		for _, l := range strings.Split(g.Logs.String(), "\n") {
			if strings.Contains(l, `"msg":"WHEP session ended"`) &&
				(strings.Contains(l, `"reason":"deleted"`) || strings.Contains(l, `"reason":"closed"`)) {
				n++
			}
		}
		return n
	}
	endedBefore := ended()
	if err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 10*time.Second, "the live session ended as the page closed", func() bool { return ended() > endedBefore })

	// the fallback without the worker: the clip fetched with the header
	t.Run("without service worker", func(t *testing.T) {
		recBrowserSignIn(t, ctx, g.Base, "olivia", "olivia-pw", true)
		recOpenRecordings(t, ctx, "rec-v")
		start := span.Start.Add(2 * time.Second).UTC().Format(time.RFC3339)
		if err := chromedp.Run(ctx,
			chromedp.SetValue(".rec-goto-time", start, chromedp.ByQuery),
			chromedp.Click(".rec-goto-play", chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		st := recWaitPlayback(t, ctx, "playback from a typed time", func(s recPlaybackStats) bool {
			return s.Mode == "playback" && s.FramesDecoded >= 5 && !s.Paused
		})
		if st.Via != "blob" {
			t.Fatalf("playback went %q, want the Blob fallback", st.Via)
		}
	})

	// the single-camera view opened by a click on the tile itself (not its
	// Recordings button): the widget mounts in #single-recordings through
	// the view's hook, plays a typed time there (the live picture of the
	// view keeps its own session), announces playback and live, offers no
	// export to a reviewer (view and playback), and goes when the view closes
	t.Run("single view", func(t *testing.T) {
		recBrowserSignIn(t, ctx, g.Base, "rita", "rita-pw", false)
		var ok bool
		if err := chromedp.Run(ctx,
			chromedp.Poll(`(() => { const t = document.querySelector('article.tile[data-camera="rec-v"]');
  return !!t && t.dataset.state === 'playing'; })()`, &ok, chromedp.WithPollingTimeout(30*time.Second)),
			chromedp.Evaluate(`window.__modes = []; document.addEventListener('cordon:playback', (e) => window.__modes.push(e.detail.camera + ':' + e.detail.mode)); true`, &ok),
			chromedp.Click(`article.tile[data-camera="rec-v"] .tile-media`, chromedp.ByQuery),
			chromedp.Poll(`(() => { const s = document.getElementById('single');
  return !s.hidden && s.dataset.camera === 'rec-v' && !!document.querySelector('#single-recordings .rec[data-camera="rec-v"]'); })()`, &ok,
				chromedp.WithPollingTimeout(30*time.Second)),
		); err != nil {
			t.Fatalf("the single view with its recordings: %v", err)
		}
		recWaitPlayback(t, ctx, "the widget in the single view", func(s recPlaybackStats) bool { return s.State == "ready" && len(s.Spans) == 1 })
		var exportShown bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`!document.querySelector('#single-recordings .rec-export-open').hidden`, &exportShown)); err != nil || exportShown {
			t.Fatalf("export offered without the export right (%v)", err)
		}
		// the widget's keys stay in it (the view's PTZ pad steers with the
		// arrows anywhere in the view); Esc in its time field leaves the
		// field, not the view
		var leaked []string
		if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => {
  const seen = [];
  const l = (e) => seen.push(e.key);
  document.addEventListener('keydown', l);
  const key = (el, k) => el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
  key(document.querySelector('#single-recordings .rec-track'), 'ArrowLeft');
  key(document.querySelector('#single-recordings .rec-video'), 'ArrowRight');
  const f = document.querySelector('#single-recordings .rec-goto-time');
  f.focus();
  key(f, 'Escape');
  document.removeEventListener('keydown', l);
  return seen.concat(document.getElementById('single').hidden ? ['view closed'] : []);
})()`, &leaked)); err != nil || len(leaked) != 0 {
			t.Fatalf("keys from the recordings widget reached the page: %v (%v)", leaked, err)
		}
		start := span.Start.Add(time.Second).UTC().Format(time.RFC3339Nano)
		if err := chromedp.Run(ctx,
			chromedp.SetValue("#single-recordings .rec-goto-time", start, chromedp.ByQuery),
			chromedp.Click("#single-recordings .rec-goto-play", chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		st := recWaitPlayback(t, ctx, "playback in the single view", func(s recPlaybackStats) bool {
			return s.Mode == "playback" && s.FramesDecoded >= 5 && !s.Paused && s.Width > 0
		})
		if st.Via != "worker" {
			t.Fatalf("playback in the single view went %q, want through the service worker", st.Via)
		}
		clip, _ := time.Parse(time.RFC3339Nano, st.ClipStart)
		if want, _ := time.Parse(time.RFC3339Nano, start); clip.After(want) || want.Sub(clip) > 3*time.Second {
			t.Fatalf("asked for %s, the clip starts at %s (want the keyframe at or before)", start, st.ClipStart)
		}
		var single struct {
			Camera string `json:"camera"`
			State  string `json:"state"`
		}
		var raw string
		if err := chromedp.Run(ctx, chromedp.Evaluate(`(async () => JSON.stringify(await window.cordonSingleStats()))()`, &raw,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &single); err != nil || single.Camera != "rec-v" {
			t.Fatalf("cordonSingleStats() %s: %v", raw, err)
		}
		var liveHidden bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`getComputedStyle(document.getElementById('single-media')).display === 'none'`, &liveHidden)); err != nil || !liveHidden {
			t.Fatalf("the live picture still shown beside the recording (%v)", err)
		}
		testtool.Screenshot(t, ctx, e2eArtifacts, "recording-single-view.png")
		var modes []string
		if err := chromedp.Run(ctx,
			chromedp.Click("#single-back", chromedp.ByQuery),
			chromedp.Poll(`document.getElementById('single').hidden && document.querySelector('#single-recordings').childElementCount === 0`, &ok,
				chromedp.WithPollingTimeout(10*time.Second)),
			chromedp.Evaluate(`window.__modes`, &modes),
		); err != nil {
			t.Fatalf("close the single view: %v", err)
		}
		if len(modes) != 2 || modes[0] != "rec-v:playback" || modes[1] != "rec-v:live" {
			t.Fatalf("cordon:playback events %v (want playback, then live on close)", modes)
		}
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('single').dataset.playback === ''`, &ok)); err != nil || !ok {
			t.Fatalf("the single view still marked as playing back after close (%v)", err)
		}
		if s := recBrowserStats(t, ctx); s.Mode != "" {
			t.Fatalf("a widget is left after the view closed: %+v", s)
		}
	})

	// the playback right withdrawn by a reload while a recording plays in
	// the single view: the widget goes (the view follows the camera list's
	// rights), the live picture comes back, the view stays open
	t.Run("playback right withdrawn", func(t *testing.T) {
		recBrowserSignIn(t, ctx, g.Base, "rita", "rita-pw", false)
		var ok bool
		if err := chromedp.Run(ctx,
			chromedp.Poll(`(() => { const t = document.querySelector('article.tile[data-camera="rec-v"]');
  return !!t && t.dataset.state === 'playing'; })()`, &ok, chromedp.WithPollingTimeout(30*time.Second)),
			chromedp.Click(`article.tile[data-camera="rec-v"] .tile-media`, chromedp.ByQuery),
			chromedp.Poll(`!!document.querySelector('#single-recordings .rec[data-camera="rec-v"]')`, &ok, chromedp.WithPollingTimeout(30*time.Second)),
		); err != nil {
			t.Fatalf("the single view with its recordings: %v", err)
		}
		recWaitPlayback(t, ctx, "the widget ready", func(s recPlaybackStats) bool { return s.State == "ready" && len(s.Spans) == 1 })
		if err := chromedp.Run(ctx,
			chromedp.SetValue("#single-recordings .rec-goto-time", span.Start.UTC().Format(time.RFC3339Nano), chromedp.ByQuery),
			chromedp.Click("#single-recordings .rec-goto-play", chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		recWaitPlayback(t, ctx, "playing back", func(s recPlaybackStats) bool { return s.Mode == "playback" && s.FramesDecoded >= 3 })
		withdrawn := *cfg
		withdrawn.Auth.Users = append([]config.User(nil), cfg.Auth.Users...)
		for i := range withdrawn.Auth.Users {
			if withdrawn.Auth.Users[i].Name == "rita" {
				withdrawn.Auth.Users[i].Roles = nil
			}
		}
		drWriteConfig(t, cfgPath, &withdrawn)
		if err := g.Reload(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			drWriteConfig(t, cfgPath, cfg)
			if err := g.Reload(); err != nil {
				t.Error(err)
			}
		}()
		if err := chromedp.Run(ctx, chromedp.Poll(`(() => { const v = document.getElementById('single');
  return !v.hidden && v.dataset.camera === 'rec-v' && v.dataset.playback === '' &&
    document.querySelector('#single-recordings').childElementCount === 0 &&
    getComputedStyle(document.getElementById('single-media')).display !== 'none'; })()`, &ok,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			var html string
			_ = chromedp.Run(ctx, chromedp.OuterHTML("#single-recordings", &html, chromedp.ByQuery))
			t.Fatalf("after the playback right was withdrawn: %v (%.300s)", err, html)
		}
		if s := recBrowserStats(t, ctx); s.Mode != "" {
			t.Fatalf("a widget is left without the right: %+v", s)
		}
	})

	// a viewer without the playback right is not offered recordings (the
	// camera list says her rights; the API refuses her anyway, see
	// TestRecordingPlaybackAndExport)
	t.Run("view right only", func(t *testing.T) {
		recBrowserSignIn(t, ctx, g.Base, "vera", "vera-pw", false)
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Poll(`(() => { const t = document.querySelector('article.tile[data-camera="rec-v"]');
  return !!t && t.dataset.state === 'playing' && t.querySelector('.tile-recordings').hidden; })()`, &ok,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("vera's tile: playing without a Recordings button: %v", err)
		}
	})

	// an administrator sees the export key's fingerprint
	t.Run("admin sees the export key", func(t *testing.T) {
		fp := recAdminInfo(t, g.Base, e2eutil.Login(t, g.Base, "adam", "adam-pw")).ExportKey.Fingerprint
		recBrowserSignIn(t, ctx, g.Base, "adam", "adam-pw", false)
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Poll(`(() => { const e = document.getElementById('export-key');
  return !e.hidden && e.textContent.includes(`+"`"+fp+"`"+`); })()`, &ok, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			var text string
			_ = chromedp.Run(ctx, chromedp.Text("#export-key", &text, chromedp.ByQuery))
			t.Fatalf("the admin's export key line %q, want %s: %v", text, fp, err)
		}
	})

	testtool.CheckPage(t, ctx, problems)
}

// recBrowserSignIn loads the viewer (fresh document) and signs in.
// noWorker sets the page's test hook that turns the playback worker off.
func recBrowserSignIn(t *testing.T, ctx context.Context, base, user, pass string, noWorker bool) {
	t.Helper()
	// scripts added for new documents stay for the tab's later
	// documents too: each sign-in says which way it wants, the last wins
	var ok bool
	if err := chromedp.Run(ctx,
		testtool.AddCSPProbe(fmt.Sprintf("window.cordonNoPlaybackWorker = %t;", noWorker)),
		chromedp.Navigate(base+"/"),
		chromedp.Poll(`!document.getElementById('signin').hidden && !document.getElementById('signin-submit').disabled`, &ok,
			chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.SetValue("#username", user, chromedp.ByQuery),
		chromedp.SetValue("#password", pass, chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
}

// recOpenRecordings opens a camera's recordings from its tile's Recordings
// button: the single view opens with the widget in #single-recordings.
func recOpenRecordings(t *testing.T, ctx context.Context, camera string) {
	t.Helper()
	btn := `article.tile[data-camera="` + camera + `"] .tile-recordings`
	var ok bool
	if err := chromedp.Run(ctx,
		chromedp.Poll(`!!document.querySelector('`+btn+`') && !document.querySelector('`+btn+`').hidden`, &ok,
			chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Click(btn, chromedp.ByQuery),
		chromedp.Poll(`(() => { const v = document.getElementById('single');
  return !v.hidden && v.dataset.camera === '`+camera+`' && !!document.querySelector('#single-recordings .rec[data-camera="`+camera+`"]'); })()`, &ok,
			chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll(`(() => { const s = window.cordonPlayback && window.cordonPlayback(); return !!s && s.state !== ''; })()`, &ok,
			chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		t.Fatalf("open the recordings of %s: %v", camera, err)
	}
}

// recWaitPlayback polls window.cordonPlayback() until cond holds.
func recWaitPlayback(t *testing.T, ctx context.Context, what string, cond func(recPlaybackStats) bool) recPlaybackStats {
	t.Helper()
	var st recPlaybackStats
	e2eutil.WaitFor(t, 60*time.Second, what, func() bool {
		st = recBrowserStats(t, ctx)
		return cond(st)
	})
	return st
}

// recHasBothZones: the timeline's readout names UTC and a local zone.
func recHasBothZones(s string) bool {
	var y, mo, d, h, mi, sec int
	var rest string
	n, _ := fmt.Sscanf(s, "%d-%d-%d %d:%d:%d UTC · %s", &y, &mo, &d, &h, &mi, &sec, &rest)
	return n == 7 && rest != ""
}

// recManifestOf downloads an export and reads its manifest.
func recManifestOf(t *testing.T, u, token, dir string) recManifestJSON {
	t.Helper()
	status, _, b := recGet(t, u, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", u, status)
	}
	f := filepath.Join(dir, "browser-export.zip")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return recManifest(t, f)
}
