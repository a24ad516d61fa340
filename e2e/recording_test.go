package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
)

// TestRecordingPlaybackAndExport: a democam camera (H.264 + PCMU) with
// `record: true` is recorded through the real gateway for a few seconds,
// then a reload turns recording off (its segment closes). Its one span is
// listed; the playback MP4 of the whole span decodes with ffmpeg, holds
// every recorded frame (the index's count, each segment's ffprobe count,
// and 15 fps times its duration) and answers Range requests with the same
// bytes; an export verifies with `cordon export verify` (pinned to the key
// the admin API and `cordon export pubkey` show) and fails after one byte
// of the clip, the manifest or the signature changed; rights (playback,
// export; admin alone is not enough; not permitted and not existing look
// alike), bounds, and the `playback` and `export` audit lines.
func TestRecordingPlaybackAndExport(t *testing.T) {
	dir := t.TempDir()
	_, camA := recCam(t, "rec-a", "127.0.0.140", true, true)
	_, camB := recCam(t, "rec-b", "127.0.0.141", false, false)
	cfg := recConfig(t, dir, []config.Camera{camA, camB})
	cfgPath := filepath.Join(dir, "cordon.yaml")
	g := drStart(t, cfg, cfgPath)
	olivia := e2eutil.Login(t, g.Base, "olivia", "olivia-pw")

	recWaitRecorded(t, g.Base, olivia, "rec-a", 4*time.Second, 60*time.Second)
	// recording off by reload: the open segment is closed and indexed
	cfg.Cameras[0].Record = false
	drWriteConfig(t, cfgPath, cfg)
	adam := e2eutil.Login(t, g.Base, "adam", "adam-pw")
	e2eutil.WaitFor(t, 30*time.Second, "rec-a no longer recorded after the reload", func() bool {
		return !recAdminInfo(t, g.Base, adam).recording("rec-a")
	})
	root := cfg.Recording.Path

	spans := recSpans(t, g.Base, olivia, "rec-a", "")
	if len(spans) != 1 {
		t.Fatalf("want one span, got %+v", spans)
	}
	span := spans[0]
	if span.Duration() < 4*time.Second || time.Since(span.End) > time.Minute || span.Start.Location() != time.UTC {
		t.Fatalf("span %+v", span)
	}

	// every recorded frame, by the index and by ffprobe per segment
	indexed := 0
	for _, l := range recIndex(t, root, "rec-a") {
		indexed += l.Frames
	}
	probed := 0
	for _, f := range recSegments(t, root, "rec-a") {
		p := recFFprobe(t, f)
		if p.Codec != "h264" || p.Audio != "pcm_mulaw" {
			t.Fatalf("segment %s: %+v", f, p)
		}
		probed += p.Frames
	}
	if probed != indexed || indexed == 0 {
		t.Fatalf("segments hold %d frames by ffprobe, %d by the index", probed, indexed)
	}

	// playback of the whole span: every frame, decodable, Range-safe
	clipURL := recPlaybackURL(g.Base, "rec-a", span.Start, span.Duration()+time.Second)
	status, hdr, clip := recGet(t, clipURL, olivia, nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "video/mp4" || hdr.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("playback: %d %v %.200s", status, hdr, clip)
	}
	if hdr.Get("Cordon-Clip-Start") != span.Start.Format("2006-01-02T15:04:05.000Z07:00") {
		t.Fatalf("clip starts %s, span %s", hdr.Get("Cordon-Clip-Start"), span.Start)
	}
	clipFile := filepath.Join(dir, "clip.mp4")
	if err := os.WriteFile(clipFile, clip, 0o600); err != nil {
		t.Fatal(err)
	}
	recDecode(t, clipFile)
	p := recFFprobe(t, clipFile)
	if p.Codec != "h264" || p.Audio != "pcm_mulaw" || p.Frames != indexed {
		t.Fatalf("playback clip %+v, %d frames recorded", p, indexed)
	}
	if want := span.Duration().Seconds() * democam.FPS; math.Abs(float64(p.Frames)-want) > 2 {
		t.Fatalf("%d frames in %s of 15 fps video (want about %.0f)", p.Frames, span.Duration(), want)
	}
	t.Logf("span %s to %s (%s): %d frames recorded in %d segments, clip %d bytes, %+v",
		span.Start.Format(time.RFC3339Nano), span.End.Format(time.RFC3339Nano), span.Duration(), indexed,
		len(recSegments(t, root, "rec-a")), len(clip), p)
	recCheckRanges(t, clipURL, olivia, clip, hdr.Get("ETag"))

	// a window in the middle starts at the keyframe at or before it
	mid := span.Start.Add(span.Duration() / 2)
	status, hdr, _ = recGet(t, recPlaybackURL(g.Base, "rec-a", mid, 2*time.Second), olivia, nil)
	if status != http.StatusOK {
		t.Fatalf("playback from the middle: %d", status)
	}
	if cs, _ := time.Parse(time.RFC3339Nano, hdr.Get("Cordon-Clip-Start")); cs.After(mid) || mid.Sub(cs) > 2100*time.Millisecond {
		t.Fatalf("clip for %s starts at %s (GOP 2 s)", mid, cs)
	}

	recCheckBounds(t, g.Base, olivia, span)
	recCheckRights(t, g.Base, span)

	// the export, its verification, and tampering
	bin := drBuildCordon(t)
	exportFile := recCheckExport(t, g.Base, olivia, adam, span, dir, cfg.Audit.Path)
	if code, out := recRun(t, bin, "export", "pubkey", "--config", cfgPath); code != 0 ||
		!strings.Contains(out, recAdminInfo(t, g.Base, adam).ExportKey.PublicKey) {
		t.Fatalf("cordon export pubkey: %d %s", code, out)
	}
	recCheckVerify(t, bin, exportFile, recAdminInfo(t, g.Base, adam), dir)

	// a segment changed on disk: exports refuse it, naming the file
	seg := recSegments(t, root, "rec-a")[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	status, _, body := recExport(t, g.Base, olivia, map[string]string{"camera": "rec-a", "start": span.Start.Format(time.RFC3339Nano),
		"end": span.End.Format(time.RFC3339Nano), "reason": "after tampering"})
	if status != http.StatusConflict || !strings.Contains(body, filepath.Base(seg)) || !strings.Contains(body, "SHA-256") {
		t.Fatalf("export of a changed segment: %d %s", status, body)
	}

	// audit: who played and exported which span of which camera
	plays := recAudit(t, cfg.Audit.Path, "playback")
	if len(plays) == 0 || plays[0].Actor != "olivia" || plays[0].Camera != "rec-a" ||
		!strings.Contains(plays[0].Detail, "start="+span.Start.Format("2006-01-02T15:04:05.000Z07:00")) {
		t.Fatalf("playback audit lines %+v", plays)
	}
	for _, l := range plays {
		if l.Actor != "olivia" && l.Actor != "pat" {
			t.Fatalf("a refused principal's playback was audited as played: %+v", l)
		}
	}

	// recording on again by reload
	cfg.Cameras[0].Record = true
	drWriteConfig(t, cfgPath, cfg)
	e2eutil.WaitFor(t, 60*time.Second, "rec-a recorded again after the reload", func() bool {
		s := recSpans(t, g.Base, olivia, "rec-a", "")
		return len(s) > 0 && s[len(s)-1].End.After(span.End.Add(2*time.Second))
	})
}

// recAdminInfoJSON is GET /api/v1/admin/recording.
type recAdminInfoJSON struct {
	Enabled   bool `json:"enabled"`
	ExportKey struct {
		Fingerprint string `json:"fingerprint"`
		PublicKey   string `json:"public_key"`
	} `json:"export_key"`
	Cameras []struct {
		ID        string `json:"id"`
		Recording bool   `json:"recording"`
	} `json:"cameras"`
}

func (a recAdminInfoJSON) recording(id string) bool {
	for _, c := range a.Cameras {
		if c.ID == id {
			return c.Recording
		}
	}
	return false
}

func recAdminInfo(t testing.TB, base, token string) recAdminInfoJSON {
	t.Helper()
	status, _, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/admin/recording", token, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/admin/recording: %d %s", status, body)
	}
	var out recAdminInfoJSON
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// recCheckRanges: the same request gives the same bytes; Range, suffix
// Range and If-Range answer slices of them.
func recCheckRanges(t *testing.T, u, token string, full []byte, etag string) {
	t.Helper()
	status, _, again := recGet(t, u, token, nil)
	if status != http.StatusOK || !bytes.Equal(again, full) {
		t.Fatalf("the same playback request gave other bytes (%d, %d vs %d bytes)", status, len(again), len(full))
	}
	n := len(full)
	for _, rg := range []struct {
		header   string
		from, to int // to exclusive
	}{
		{"bytes=0-99", 0, 100},
		{fmt.Sprintf("bytes=%d-%d", n/3, n/2), n / 3, n/2 + 1},
		{"bytes=-4096", n - 4096, n},
		{fmt.Sprintf("bytes=%d-", n-10), n - 10, n},
	} {
		status, hdr, part := recGet(t, u, token, map[string]string{"Range": rg.header})
		want := fmt.Sprintf("bytes %d-%d/%d", rg.from, rg.to-1, n)
		if status != http.StatusPartialContent || hdr.Get("Content-Range") != want || !bytes.Equal(part, full[rg.from:rg.to]) {
			t.Fatalf("Range %s: %d %q (want %q), %d bytes", rg.header, status, hdr.Get("Content-Range"), want, len(part))
		}
	}
	status, _, part := recGet(t, u, token, map[string]string{"Range": "bytes=10-19", "If-Range": etag})
	if status != http.StatusPartialContent || !bytes.Equal(part, full[10:20]) {
		t.Fatalf("If-Range with the ETag: %d", status)
	}
	status, _, _ = recGet(t, u, token, map[string]string{"Range": "bytes=10-19", "If-Range": `"other"`})
	if status != http.StatusOK {
		t.Fatalf("If-Range with another ETag: %d, want the whole clip", status)
	}
	status, _, _ = recGet(t, u, token, map[string]string{"Range": fmt.Sprintf("bytes=%d-", n+5)})
	if status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("Range past the end: %d", status)
	}
}

// recCheckBounds: bad and huge spans get a clear 400, nothing recorded 404.
func recCheckBounds(t *testing.T, base, token string, span recSpan) {
	t.Helper()
	pb := base + "/api/v1/cameras/rec-a/recording"
	for _, c := range []struct {
		url    string
		status int
		msg    string
	}{
		{pb + "?start=" + span.Start.Format(time.RFC3339) + "&duration=61m", 400, "at most 1h"},
		{pb + "?start=" + span.Start.Format(time.RFC3339) + "&duration=-5s", 400, "more than 0"},
		{pb + "?start=yesterday&duration=5s", 400, "RFC 3339"},
		{pb + "?duration=5s", 400, "start is required"},
		{pb + "?start=" + span.Start.Format(time.RFC3339) + "&duration=soon", 400, "duration"},
		{recPlaybackURL(base, "rec-a", span.Start.Add(-48*time.Hour), time.Hour), 404, "nothing was recorded"},
		{recPlaybackURL(base, "rec-b", span.Start, time.Minute), 404, "nothing was ever recorded"},
		{base + "/api/v1/cameras/rec-a/recordings?start=2020-01-01T00:00:00Z&end=2026-01-01T00:00:00Z", 400, "366 days"},
		{base + "/api/v1/cameras/rec-a/recordings?start=2020-01-01", 400, "RFC 3339"},
	} {
		status, _, body := e2eutil.Do(t, http.MethodGet, c.url, token, "", "")
		if status != c.status || !strings.Contains(body, c.msg) || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("GET %s: %d %s (want %d naming %q)", c.url, status, body, c.status, c.msg)
		}
	}
	if got := recSpans(t, base, token, "rec-b", ""); len(got) != 0 {
		t.Errorf("rec-b was never recorded, listed %+v", got)
	}
	// a window clips the span
	from := span.Start.Add(time.Second)
	got := recSpans(t, base, token, "rec-a", "start="+from.Format(time.RFC3339Nano)+"&end="+span.End.Format(time.RFC3339Nano))
	if len(got) != 1 || !got[0].Start.Equal(from) || !got[0].End.Equal(span.End) {
		t.Errorf("window from %s: %+v", from, got)
	}
	start, end := span.Start.Format(time.RFC3339Nano), span.End.Format(time.RFC3339Nano)
	for _, c := range []struct {
		body   map[string]string
		status int
		msg    string
	}{
		{map[string]string{"camera": "rec-a", "start": start, "end": end}, 400, "reason is required"},
		{map[string]string{"camera": "rec-a", "start": start, "end": end, "reason": strings.Repeat("x", 1001)}, 400, "longer than 1000"},
		{map[string]string{"camera": "rec-a", "start": start, "end": end, "reason": "a\x00b"}, 400, "control characters"},
		{map[string]string{"camera": "rec-a", "start": span.Start.Add(-25 * time.Hour).Format(time.RFC3339), "end": end, "reason": "x"}, 400, "at most 24h"},
		{map[string]string{"camera": "rec-a", "start": end, "end": start, "reason": "x"}, 400, "end must be after start"},
		{map[string]string{"camera": "rec-a", "start": "noon", "end": end, "reason": "x"}, 400, "RFC 3339"},
		{map[string]string{"camera": "rec-a", "start": span.Start.Add(-3 * time.Hour).Format(time.RFC3339), "end": span.Start.Add(-2 * time.Hour).Format(time.RFC3339), "reason": "x"}, 404, "nothing was recorded"},
		{map[string]string{"camera": "rec-a", "start": start, "end": end, "reason": "x", "extra": "y"}, 400, "must be JSON"},
	} {
		status, _, body := recExport(t, base, token, c.body)
		if status != c.status || !strings.Contains(body, c.msg) {
			t.Errorf("export %v: %d %s (want %d naming %q)", c.body, status, body, c.status, c.msg)
		}
	}
}

// recCheckRights: playback needs playback, export needs export; admin
// alone is not enough; a camera outside one's rights and a camera that
// does not exist get the same answer.
func recCheckRights(t *testing.T, base string, span recSpan) {
	t.Helper()
	tokens := map[string]string{}
	for _, a := range recAccounts {
		tokens[a.Name] = e2eutil.Login(t, base, a.Name, a.Password)
	}
	list := func(cam string) string { return base + "/api/v1/cameras/" + cam + "/recordings" }
	play := func(cam string) string { return recPlaybackURL(base, cam, span.Start, 2*time.Second) }
	exp := func(cam string) map[string]string {
		return map[string]string{"camera": cam, "start": span.Start.Format(time.RFC3339Nano), "end": span.End.Format(time.RFC3339Nano), "reason": "rights test"}
	}
	for _, c := range []struct {
		who              string
		cam              string
		list, play, post int
	}{
		{"vera", "rec-a", 403, 403, 403},   // view only
		{"adam", "rec-a", 403, 403, 403},   // admin only
		{"pat", "rec-a", 200, 200, 403},    // playback only
		{"olivia", "other", 403, 403, 403}, // outside her rights, not existing
		{"vera", "other", 403, 403, 403},
		{"olivia", "rec-zzz", 404, 404, 404}, // inside her globs, not existing
	} {
		tok := tokens[c.who]
		if s, _, body := e2eutil.Do(t, http.MethodGet, list(c.cam), tok, "", ""); s != c.list {
			t.Errorf("%s lists %s: %d %s, want %d", c.who, c.cam, s, body, c.list)
		}
		if s, _, body := e2eutil.Do(t, http.MethodGet, play(c.cam), tok, "", ""); s != c.play {
			t.Errorf("%s plays %s: %d %.200s, want %d", c.who, c.cam, s, body, c.play)
		}
		if s, _, body := recExport(t, base, tok, exp(c.cam)); s != c.post {
			t.Errorf("%s exports %s: %d %s, want %d", c.who, c.cam, s, body, c.post)
		}
	}
	// the same answer for "not permitted" and "does not exist" (403 body)
	_, _, a := e2eutil.Do(t, http.MethodGet, list("rec-a"), tokens["vera"], "", "")
	_, _, b := e2eutil.Do(t, http.MethodGet, list("nope"), tokens["olivia"], "", "")
	if a != b {
		t.Errorf("not permitted %q vs not existing %q", a, b)
	}
	for _, u := range []string{list("rec-a"), play("rec-a"), base + "/api/v1/exports/0123456789abcdef0123456789abcdef"} {
		if s, h, _ := e2eutil.Do(t, http.MethodGet, u, "", "", ""); s != 401 || h.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without a token: %d", u, s)
		}
	}
	if s, _, _ := e2eutil.Do(t, http.MethodGet, base+"/api/v1/admin/recording", tokens["olivia"], "", ""); s != 403 {
		t.Errorf("admin recording info as olivia: %d", s)
	}
}

// recCheckExport builds an export as olivia, checks its answer, its
// download rights, its audit line and the ZIP's content; returns the
// ZIP's path.
func recCheckExport(t *testing.T, base, olivia, adam string, span recSpan, dir, auditPath string) string {
	t.Helper()
	reason := "Incident 2026/1142: gate tailgating, requested by DC Smith"
	status, ans, body := recExport(t, base, olivia, map[string]string{"camera": "rec-a",
		"start": span.Start.Add(500 * time.Millisecond).Format(time.RFC3339Nano), "end": span.End.Format(time.RFC3339Nano), "reason": reason})
	if status != http.StatusCreated || len(ans["id"]) != 32 || ans["url"] != "/api/v1/exports/"+ans["id"] {
		t.Fatalf("export: %d %s", status, body)
	}
	pat := e2eutil.Login(t, base, "pat", "pat-pw")
	for _, who := range []string{pat, adam} {
		if s, _, _ := recGet(t, base+ans["url"], who, nil); s != http.StatusForbidden {
			t.Fatalf("export download without the export right: %d", s)
		}
	}
	if s, _, _ := recGet(t, base+"/api/v1/exports/ffffffffffffffffffffffffffffffff", olivia, nil); s != http.StatusNotFound {
		t.Fatalf("unknown export: %d", s)
	}
	status, hdr, zipBytes := recGet(t, base+ans["url"], olivia, nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/zip" || !strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export download: %d %v", status, hdr)
	}
	file := filepath.Join(dir, "export.zip")
	if err := os.WriteFile(file, zipBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	names := recZipNames(t, file)
	var clips []string
	for _, n := range names {
		if strings.HasSuffix(n, ".mp4") {
			clips = append(clips, n)
		}
	}
	if len(clips) != 1 || !strings.Contains(strings.Join(names, " "), "manifest.json") || !strings.Contains(strings.Join(names, " "), "manifest.sig") {
		t.Fatalf("export holds %v", names)
	}
	// the manifest: camera, span, principal, reason, audit seq of its line
	m := recManifest(t, file)
	var line *recAuditLine
	for _, l := range recAudit(t, auditPath, "export") {
		if strings.Contains(l.Detail, "id="+ans["id"]) {
			line = &l
		}
	}
	if line == nil || line.Seq != m.AuditSeq || line.Actor != "olivia" || line.Camera != "rec-a" ||
		!strings.Contains(line.Detail, "reason=") || !strings.Contains(line.Detail, "start="+m.Start) {
		t.Fatalf("export audit line %+v, manifest audit_seq %d", line, m.AuditSeq)
	}
	if m.Camera.ID != "rec-a" || m.Camera.Name != "Camera rec-a" || m.Principal != "olivia" || m.Reason != reason || m.Node == "" {
		t.Fatalf("manifest %+v", m)
	}
	return file
}

// recManifestJSON is an export's manifest.json.
type recManifestJSON struct {
	Camera struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"camera"`
	Start, End, Principal, Reason, Node string
	AuditSeq                            uint64 `json:"audit_seq"`
	Files                               []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
}

func recManifest(t testing.TB, file string) recManifestJSON {
	t.Helper()
	b := recZipEntry(t, file, "manifest.json")
	var m recManifestJSON
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json %s: %v", b, err)
	}
	return m
}

// recCheckVerify: `cordon export verify` accepts the export (pinned to
// the gateway's key) and refuses it after one byte of the clip, the
// manifest or the signature changed, naming what differs.
func recCheckVerify(t *testing.T, bin, file string, info recAdminInfoJSON, dir string) {
	t.Helper()
	pub := filepath.Join(dir, "export.pub")
	if err := os.WriteFile(pub, []byte(info.ExportKey.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := recRun(t, bin, "export", "verify", file)
	if code != 0 || !strings.Contains(out, info.ExportKey.Fingerprint) || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("cordon export verify: %d\n%s", code, out)
	}
	code, out = recRun(t, bin, "export", "verify", file, "--pubkey", pub)
	if code != 0 || !strings.Contains(out, "VERIFIED: every file") {
		t.Fatalf("cordon export verify --pubkey: %d\n%s", code, out)
	}
	var clip string
	for _, n := range recZipNames(t, file) {
		if strings.HasSuffix(n, ".mp4") {
			clip = n
		}
	}
	m := recManifest(t, file)
	sum := sha256.Sum256(recZipEntry(t, file, clip))
	for _, f := range m.Files {
		if f.Name == clip && f.SHA256 != fmt.Sprintf("%x", sum) {
			t.Fatalf("manifest names sha256 %s for %s, it is %x", f.SHA256, clip, sum)
		}
	}
	for _, c := range []struct {
		entry string
		off   int64
		names string
	}{
		{clip, -1000, clip},               // a byte of video data
		{"manifest.json", 20, "manifest"}, // a byte of the manifest
		{"manifest.sig", 7, "manifest.sig"},
	} {
		bad := filepath.Join(dir, "tampered-"+strings.ReplaceAll(c.entry, "/", "_")+".zip")
		recTamper(t, file, bad, c.entry, c.off)
		code, out := recRun(t, bin, "export", "verify", bad, "--pubkey", pub)
		if code != 1 || !strings.Contains(out, "DIFFERS") || !strings.Contains(out, c.names) || !strings.Contains(out, "NOT VERIFIED") {
			t.Fatalf("verify after changing one byte of %s: %d\n%s", c.entry, code, out)
		}
	}
}
