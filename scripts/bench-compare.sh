#!/usr/bin/env bash
# bench-compare: cordon beside MediaMTX (when MEDIAMTX=/path/to/mediamtx is
# set), each pinned to one core, the camera and the clients on the other,
# alternated point by point; prints the README's "Measured" table with
# ratios. Without MEDIAMTX it measures cordon alone.
#
#   make bench-compare                                  # cordon alone, every row
#   MEDIAMTX=/path/to/mediamtx make bench-compare       # side by side
#   ROWS=join,sweep POINTS=10,200 DURATION=30s make bench-compare
#   GO2RTC=/path/to/go2rtc ROWS=rtsp DURATION=30s make bench-compare  # RTSP row beside go2rtc
#   GO2RTC=/path/to/go2rtc ROWS=rtsp RTSP_TOGETHER=1 make bench-compare  # ... in the same windows
#
# Env: MEDIAMTX, GO2RTC (a further peer, RTSP row only), BASELINE (another cordon binary instead of MediaMTX:
# before/after a change), ROWS (join,sweep,joinload,rtsp,ingest), POINTS
# (10,50,100,200,300,400,500,700), DURATION (60s), JOINS (50), RTSP_READERS
# (50,150: reader counts of the rtsp row, and the CPU per added reader), RTSP_TOGETHER
# (1: the rtsp row runs every server at once on the server core, measured in
# one window, so that they share the machine's noise), PROFILE (the
# sweep point profiled, 200; 0 = none), OUT (a file for the table), SERVER_CPU (0), CLIENT_CPU (1). Needs ffmpeg, ffprobe and
# taskset; takes about 45 minutes with every row and a peer.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ffmpeg ffprobe taskset; do
	command -v "$tool" >/dev/null || { echo "bench-compare: $tool is required (scripts/install-test-deps.sh installs ffmpeg)" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
	echo "bench-compare: needs two cores (one for the server, one for the camera and clients)" >&2
	exit 1
fi

GO=${GO:-go}
mkdir -p bin
CGO_ENABLED=0 $GO build -trimpath -o bin/cordon ./cmd/cordon
CGO_ENABLED=0 $GO build -trimpath -o bin/cordon-load ./cmd/cordon-load

# The clips are encoded once: testsrc2 with moving noise (so P-frames are
# not free), no B-frames, a keyframe every 2 s, constant bitrate.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cordon-bench
mkdir -p "$cache"
encode() { # out size rate
	local out=$1 size=$2 rate=$3
	[ -s "$out" ] && return
	echo "bench-compare: encoding $out (once)" >&2
	ffmpeg -hide_banner -v error -y -f lavfi -i "testsrc2=size=$size:rate=25,noise=alls=30:allf=t" -t 30 \
		-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf 0 -g 50 -keyint_min 50 -sc_threshold 0 \
		-b:v "$rate" -maxrate "$rate" -bufsize "$rate" "$out.tmp.mkv"
	mv "$out.tmp.mkv" "$out"
	ffprobe -v error -select_streams v:0 -show_entries stream=width,height,bit_rate,r_frame_rate -of csv=p=0 "$out" >&2 || true
}
encode "$cache/clip-1080p25-4M.mkv" 1920x1080 4M
encode "$cache/clip-720p25-2M.mkv" 1280x720 2M

args=(compare --cordon bin/cordon --load "$PWD/bin/cordon-load" --clip "$cache/clip-1080p25-4M.mkv" --clip720 "$cache/clip-720p25-2M.mkv"
	--server-cpu "${SERVER_CPU:-0}" --client-cpu "${CLIENT_CPU:-1}")
[ -n "${MEDIAMTX:-}" ] && args+=(--mediamtx "$MEDIAMTX")
[ -n "${BASELINE:-}" ] && args+=(--baseline "$BASELINE")
[ -n "${GO2RTC:-}" ] && args+=(--go2rtc "$GO2RTC")
[ -n "${ROWS:-}" ] && args+=(--rows "$ROWS")
[ -n "${POINTS:-}" ] && args+=(--points "$POINTS")
[ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
[ -n "${JOINS:-}" ] && args+=(--joins "$JOINS")
[ -n "${RTSP_READERS:-}" ] && args+=(--rtsp-readers "$RTSP_READERS")
[ -n "${RTSP_TOGETHER:-}" ] && args+=(--rtsp-together)
[ -n "${PROFILE:-}" ] && args+=(--profile "$PROFILE")
[ -n "${OUT:-}" ] && args+=(--out "$OUT")
# the orchestrator itself stays off the server's core
exec taskset -c "${CLIENT_CPU:-1}" bin/cordon-load "${args[@]}"
