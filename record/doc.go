// Package record is cordon's recorder and evidence store: it writes each
// recorded camera's sanitized stream to fragmented MP4 segments on disk,
// keeps a per-camera index of them, applies retention (age and disk quota),
// answers playback requests with a seekable progressive MP4 built from the
// recorded bytes, and builds signed evidence exports (ZIP: clip(s) +
// manifest.json + manifest.sig) that `cordon export verify` checks offline.
//
// It is a new top-level package because it has no other home: it is not
// part of the live media path (relay only fans frames out and must never
// wait for a disk), not part of the camera unit (which owns a camera's
// connection, not years of its files), and not the gateway (the composition
// root only wires components). It owns files and their integrity, and the
// command line (`cordon export verify`) uses it without a running gateway.
//
// # Seam
//
// The recorder reads a camera through the Source interface declared here
// (the wiring adapts a relay reader to it): Open waits for the camera and
// returns a Feed with fixed tracks; Feed.Next delivers Samples (one video
// access unit or one audio frame each, sanitized, with PTS/DTS). A Feed
// that ends (camera reconnect, codecs changed) is reopened. Audit lines for
// playback and exports go through the Auditor interface. Wiring, in short:
//
//	rec := &record.Recorder{Path: cfg.Recording.Path, Retain: cfg.Recording.RetainDuration(),
//		MaxDiskBytes: cfg.Recording.MaxDiskBytes(), Auditor: record.AuditLog{Trail: auditLog},
//		Metrics: record.NewMetrics(reg), Log: log}
//	err := rec.Initialize()
//	err = rec.StartCamera(cam.ID, source) // each camera with record: true; StopCamera on removal
//	exp := &record.Exporter{Recorder: rec, StateDir: cfg.StateDir, Node: nodeID, Version: version}
//	err = exp.Initialize()
//	// GET .../recordings: rec.Spans(id, start, end) (+ Span.PlaybackQuery for the url)
//	// GET .../recording:  clip, err := rec.Playback(record.PlaybackRequest{...}); defer clip.Close()
//	//                     w.Header().Set("ETag", clip.ETag()); http.ServeContent(w, r, clip.Name, clip.ModTime(), clip)
//	// POST /api/v1/exports: info, err := exp.Create(ctx, record.ExportRequest{...})
//	// GET /api/v1/exports/{id}: f, manifest, err := exp.Open(id) (check the right on manifest.Camera.ID)
//
// Errors: ErrUnknownCamera and ErrNoRecording (404), ErrBadSpan (400),
// *CorruptError (409, it names the file), ErrAuditUnavailable (503).
//
// An export is audited before its manifest is signed (the manifest holds
// the line's seq as audit_seq; AuditLog takes it from audit.Log.AppendSeq,
// so concurrent exports each get their own). Everything that can fail on
// the recordings happens before that line; a failure after it (disk full
// while finishing, the rename) is audited as a second `export` line naming
// the id and why it does not exist, and an export interrupted there by a
// crash is audited so at the next start.
//
// # Time
//
// Recording times are UTC assigned by the gateway on arrival, from the
// recording clock (clock.go): the wall clock read at an anchor plus the
// monotonic time elapsed since. The anchor is taken when the Recorder
// starts. A segment's start is the recording time at which its first
// keyframe arrived (to the millisecond); times within a segment follow the
// stream's own timestamps (DTS) from there, and its end is its start plus
// the duration of what it holds.
//
// The wall clock may step while cordon runs (a box without a real-time
// clock boots with a wrong time and NTP corrects it later; an operator
// sets it). The difference is exported every minute as
// cordon_recording_clock_offset_seconds; beyond MaxClockOffset (2 s) it is
// logged as a warning, and at the next segment boundary of any camera the
// recording clock is re-anchored to the wall clock (logged with the step,
// counted in cordon_recording_clock_reanchors_total). A segment open at
// that moment keeps its own timeline and ends at its camera's next
// keyframe (nothing is lost; no segment has a jump inside it); every
// camera's next segment starts on the new anchor. What a step does to
// spans:
//   - forward (the clock was behind): the next segment starts later than
//     the previous one ended, by about the step, so the span splits there
//     (a gap of more than 2 s); recordings before the re-anchor keep the
//     times the old clock gave them.
//   - back by more than 2 s (the clock was ahead): recordings never overlap
//     what was already recorded, so a segment that would start more than
//     2 s before the end of the camera's newest recording starts at that
//     end instead (logged); its times stay ahead of the wall clock by up to
//     the step until the camera's next break at least that long. The same
//     holds across a restart with the clock set back.
//
// Steps of up to 2 s (NTP slewing, leap smearing) are absorbed: the
// recording clock keeps the monotonic rate.
//
// # On disk
//
//	<path>/<camera>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.mmmZ>.mp4   segments (UTC start in the name)
//	<path>/<camera>/<YYYY-MM-DD>/index.jsonl                  append-only index of that day
//	<path>/_exports/<id>.zip                                   evidence exports (never removed by retention)
//
// Segments are fragmented MP4 (ftyp+moov, then one moof+mdat per fragment
// of at most one second (700 ms by default), written in one write and fdatasync'ed), so a crash
// loses at most the fragment being collected. At start-up, segments that
// are not in the index (left open by a crash) are cut after their last
// complete fragment and indexed.
package record
