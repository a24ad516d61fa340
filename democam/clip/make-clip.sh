#!/bin/sh
# make-clip.sh regenerates the synthetic camera clips embedded by package
# democam. Run it from anywhere; it writes next to itself. Needs ffmpeg with
# libx264 (and libx265 for the H.265 variant); Debian's ffmpeg 5.1 has both.
#
# Every clip: testsrc2 moving picture, 320x180, 15 fps, GOP exactly 2 s
# (30 frames, no scene-cut keyframes), parameter sets repeated in band before
# every IDR, no SEI (x264/x265 write their settings in an SEI; it is removed
# with filter_units so the clean camera is clean), raw Annex-B elementary
# stream. The burnt-in text is the clip time as SS.t: seconds within the
# minute and tenths. The 60 s clips are played by the camera aligned to the
# wall clock (frame n is sent at minute start + n/15 s), so the burnt-in
# seconds show the real second-of-minute.
#
#   clip.h264        60 s, H.264 main profile, no B-frames, one slice per frame
#   clip-sliced.h264 60 s, same picture, slices of at most 1000 bytes
#                    (for packetization-mode=0 cameras: every NAL fits in one
#                    RTP packet)
#   clip-bframes.h264 4 s, H.264 main profile with B-frames (b-adapt off, 2 B)
#   clip-h265.h265    4 s, H.265 main, no B-frames
set -eu
cd "$(dirname "$0")"

font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
textfile=$(mktemp)
trap 'rm -f "$textfile"' EXIT
# drawtext expands %{...} in the text file: seconds (2 digits) and tenths.
printf '%s' '%{eif:floor(t):d:2}.%{eif:mod(floor(t*10),10):d}' >"$textfile"

fps=15
gop=30
size=320x180
vf="drawbox=x=0:y=0:w=iw:h=44:color=black@0.6:t=fill,drawtext=fontfile=$font:textfile=$textfile:expansion=normal:x=8:y=6:fontsize=32:fontcolor=white,drawtext=fontfile=$font:text=cordon democam:x=w-tw-8:y=16:fontsize=14:fontcolor=yellow"

common="-hide_banner -loglevel error -y -f lavfi"
x264common="-c:v libx264 -pix_fmt yuv420p -threads 1 -g $gop -keyint_min $gop -sc_threshold 0"

# shellcheck disable=SC2086
ffmpeg $common -i "testsrc2=size=$size:rate=$fps:duration=60" -vf "$vf" \
	$x264common -profile:v main -bf 0 -crf 35 -x264-params repeat-headers=1 \
	-bsf:v filter_units=remove_types=6 -f h264 clip.h264

# shellcheck disable=SC2086
ffmpeg $common -i "testsrc2=size=$size:rate=$fps:duration=60" -vf "$vf" \
	$x264common -profile:v main -bf 0 -crf 38 -slice-max-size 1000 -x264-params repeat-headers=1 \
	-bsf:v filter_units=remove_types=6 -f h264 clip-sliced.h264

# shellcheck disable=SC2086
ffmpeg $common -i "testsrc2=size=$size:rate=$fps:duration=4" -vf "$vf" \
	$x264common -profile:v main -bf 2 -x264-params repeat-headers=1:b-adapt=0:b-pyramid=none:open-gop=0 -crf 33 \
	-bsf:v filter_units=remove_types=6 -f h264 clip-bframes.h264

if ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx265; then
	# shellcheck disable=SC2086
	ffmpeg $common -i "testsrc2=size=$size:rate=$fps:duration=4" -vf "$vf" \
		-c:v libx265 -pix_fmt yuv420p -crf 33 \
		-x265-params "log-level=error:bframes=0:keyint=$gop:min-keyint=$gop:scenecut=0:repeat-headers=1:info=0:open-gop=0:pools=1:frame-threads=1" \
		-bsf:v filter_units=remove_types=39 -f hevc clip-h265.h265
fi
ls -l clip*.h26?
