package e2e

// Helpers of the recording and evidence tests (recording_test.go,
// recording_crash_test.go, recording_browser_test.go). Names carry a "rec"
// prefix. Camera hosts of these tests: 127.0.0.140-149.

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// recAccounts: olivia investigates (view, playback, export on rec-*), pat
// reviews (playback only), rita views and reviews (view, playback), vera
// only views, adam is an administrator and nothing else.
var recAccounts = []e2eutil.Account{
	{Name: "olivia", Password: "olivia-pw", Cameras: []string{"rec-*"}},
	{Name: "pat", Password: "pat-pw"},
	{Name: "rita", Password: "rita-pw", Cameras: []string{"rec-*"}},
	{Name: "vera", Password: "vera-pw", Cameras: []string{"*"}},
	{Name: "adam", Password: "adam-pw", Admin: true},
}

// recConfig is a config recording under dir/recordings with the accounts
// above and their roles.
func recConfig(t testing.TB, dir string, cams []config.Camera) *config.Config {
	t.Helper()
	cfg := e2eutil.Config(t, recAccounts, cams)
	cfg.Recording.Path = filepath.Join(dir, "recordings")
	cfg.Auth.Roles = []config.Role{
		{Name: "investigator", Cameras: []string{"rec-*"}, Rights: []string{"playback", "export"}},
		{Name: "reviewer", Cameras: []string{"rec-*"}, Rights: []string{"playback"}},
	}
	for i := range cfg.Auth.Users {
		switch cfg.Auth.Users[i].Name {
		case "olivia":
			cfg.Auth.Users[i].Roles = []string{"investigator"}
		case "pat", "rita":
			cfg.Auth.Users[i].Roles = []string{"reviewer"}
		}
	}
	return cfg
}

// recCam starts a democam camera (H.264 15 fps, optional PCMU audio) and
// returns it with its config entry.
func recCam(t testing.TB, id, host string, audio, record bool) (*democam.Camera, config.Camera) {
	t.Helper()
	c := coreCam(t, id, host, audio)
	return c, config.Camera{ID: id, Name: "Camera " + id, URL: c.URL(), Username: c.Username, Password: c.Password,
		Transport: config.TransportTCP, Record: record}
}

// recSpan is one entry of GET .../recordings.
type recSpan struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	URL   string    `json:"url"`
}

func (s recSpan) Duration() time.Duration { return s.End.Sub(s.Start) }

// recSpans lists a camera's spans (query: extra start/end parameters).
func recSpans(t testing.TB, base, token, camera, query string) []recSpan {
	t.Helper()
	u := base + "/api/v1/cameras/" + camera + "/recordings"
	if query != "" {
		u += "?" + query
	}
	status, _, body := e2eutil.Do(t, http.MethodGet, u, token, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	var out []recSpan
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("recordings answer %s: %v", body, err)
	}
	return out
}

// recWaitRecorded waits until camera has a span of at least d.
func recWaitRecorded(t testing.TB, base, token, camera string, d, within time.Duration) recSpan {
	t.Helper()
	var got recSpan
	e2eutil.WaitFor(t, within, fmt.Sprintf("%s recorded for %s", camera, d), func() bool {
		for _, s := range recSpans(t, base, token, camera, "") {
			if s.Duration() >= d {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// recGet sends GET with a token and extra headers; returns status, header
// and body.
func recGet(t testing.TB, u, token string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, resp.Header, b
}

// recPlaybackURL is the playback URL of [start, start+d).
func recPlaybackURL(base, camera string, start time.Time, d time.Duration) string {
	return base + "/api/v1/cameras/" + camera + "/recording?" + url.Values{
		"start": {start.UTC().Format(time.RFC3339Nano)}, "duration": {d.String()}}.Encode()
}

// recProbe is what ffprobe says about a file's first video stream.
type recProbe struct {
	Codec  string
	Frames int
	Audio  string // first audio stream's codec, "" when none
}

// recFFprobe counts the decoded video frames of file (ffprobe
// -count_frames) and names its codecs.
func recFFprobe(t testing.TB, file string) recProbe {
	t.Helper()
	ffprobe := testtool.Require(t, "ffprobe")
	out, errOut, err := coreRun(context.Background(), 2*time.Minute, ffprobe, "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_type,codec_name,nb_read_frames", "-of", "json", file)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, errOut)
	}
	var res struct {
		Streams []struct {
			Type   string `json:"codec_type"`
			Codec  string `json:"codec_name"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	var p recProbe
	for _, s := range res.Streams {
		switch {
		case s.Type == "video" && p.Codec == "":
			p.Codec = s.Codec
			p.Frames, _ = strconv.Atoi(s.Frames)
		case s.Type == "audio" && p.Audio == "":
			p.Audio = s.Codec
		}
	}
	return p
}

// recDecode decodes file completely with ffmpeg and fails on any error.
func recDecode(t testing.TB, file string) {
	t.Helper()
	ffmpeg := testtool.Require(t, "ffmpeg")
	_, errOut, err := coreRun(context.Background(), 2*time.Minute, ffmpeg, "-hide_banner", "-nostdin", "-v", "error",
		"-xerror", "-i", file, "-f", "null", "-")
	if err != nil || strings.TrimSpace(errOut) != "" {
		t.Fatalf("ffmpeg cannot decode %s cleanly: %v\n%s", file, err, errOut)
	}
}

// recIndexLine is one line of a day's index.jsonl (record's on-disk index).
type recIndexLine struct {
	Seg      string `json:"seg"`
	Frames   int    `json:"frames"`
	Repaired bool   `json:"repaired"`
	Del      string `json:"del"`
	Why      string `json:"why"`
}

// recIndex reads every index line of a camera's recordings.
func recIndex(t testing.TB, root, camera string) []recIndexLine {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, camera, "*", "index.jsonl"))
	var out []recIndexLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var l recIndexLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("index line %q of %s: %v", sc.Text(), f, err)
			}
			out = append(out, l)
		}
	}
	return out
}

// recSegments lists a camera's segment files on disk.
func recSegments(t testing.TB, root, camera string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, camera, "*", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// recExport asks for an export and returns the status and the answer.
func recExport(t testing.TB, base, token string, body any) (int, map[string]string, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	status, _, resp := e2eutil.Do(t, http.MethodPost, base+"/api/v1/exports", token, "application/json", string(b))
	var out map[string]string
	_ = json.Unmarshal([]byte(resp), &out)
	return status, out, resp
}

// recRun runs the cordon binary and returns its exit code and output.
func recRun(t testing.TB, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running cordon %v: %v", args, err)
	return -1, ""
}

// recTamper copies a ZIP export to dst with one byte of entry name's
// stored data flipped (at offset off of the entry, counted from its end
// when off < 0).
func recTamper(t testing.TB, src, dst, name string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		if f.Method != zip.Store {
			t.Fatalf("%s is compressed in the export: evidence bytes must be stored", name)
		}
		start, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off < 0 {
			off += int64(f.CompressedSize64)
		}
		b[start+off] ^= 0x01
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no entry %s in the export", name)
}

// recZipNames lists the entries of a ZIP.
func recZipNames(t testing.TB, file string) []string {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	return out
}

// recAuditLine is an audit line as the recording tests read it.
type recAuditLine struct {
	Seq    uint64 `json:"seq"`
	Event  string `json:"event"`
	Actor  string `json:"actor"`
	Camera string `json:"camera"`
	Detail string `json:"detail"`
}

// recAudit returns the audit lines of one event.
func recAudit(t testing.TB, path, event string) []recAuditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []recAuditLine
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var l recAuditLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if l.Event == event {
			out = append(out, l)
		}
	}
	return out
}

// recZipEntry reads one entry of a ZIP.
func recZipEntry(t testing.TB, file, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no %s in %s", name, file)
	return nil
}
