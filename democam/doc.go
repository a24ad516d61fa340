// Package democam is the camera side of cordon: synthetic RTSP cameras that
// publish an embedded, looped H.264 (or H.265) clip with a moving picture and
// a burnt-in clock, optionally with a PCMU tone, behind optional Digest/Basic
// auth. `cordon demo` runs them in place of real cameras, and the tests of
// every other package use them, including the quirky-camera kit (Quirks),
// which reproduces one by one the camera behaviours listed in FIELD-NOTES
// ("Camera behaviour seen in the field") so that the sanitizer can be tested
// end to end against them.
//
// PTZCamera is an ONVIF pan-tilt-zoom dome (device, media and PTZ
// services, WS-Security digest and HTTP Digest, device-management settings
// with a factory reset) whose RTSP picture is rendered live from its
// position and encoded by a small pure-Go H.264 encoder (I_PCM and P_Skip
// macroblocks), so a screenshot shows where it points; optionally with a
// sub stream (SubPath: the same view at 160x90).
//
// The clips are made by clip/make-clip.sh (ffmpeg + libx264/libx265) and
// embedded with go:embed; the package never runs ffmpeg itself.
//
// Wall clock: the 60 s clips show seconds-within-the-minute and tenths. A
// Camera sends clip frame n at (start of the current minute + n/15 s) of the
// host's clock, and starts at the keyframe of the current 2 s GOP, so the
// burnt-in seconds are the real second of the minute to within one frame
// (67 ms) plus scheduling jitter, at the camera; viewers add their own
// latency. The short B-frame and H.265 clips loop every 4 s and their text
// shows seconds within those 4 s only.
package democam
