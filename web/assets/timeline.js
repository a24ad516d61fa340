// cordon recordings: a 24-hour timeline of one camera's recorded spans,
// playback from any point (native <video> with seeking), back to live, times
// in UTC and local time, and evidence export for users with the right.
//
// The host page calls mountTimeline(container, ctx) with an empty element
// and gets {destroy()} back; see web/README.md "Recordings". Media requests
// carry no token in their URL: a service worker (playback-sw.js) adds the
// Authorization header to the <video>'s requests, asking this page for the
// token each time. Where service workers are unavailable (plain HTTP off
// loopback, an untrusted certificate) clips are fetched with the header
// into a Blob instead, in shorter windows.

import { errorSentence } from './whep.js';
import { DAY_MS, bothZones, duration, iso, parseSpans, playbackWorker, tickFmt, node, button } from './recutil.js';
import { ExportForm } from './evidence.js';

const MAX_CLIP_MS = 3600 * 1000; // the gateway's playback bound
const BLOB_CLIP_MS = 10 * 60 * 1000; // without the worker: whole clips in memory
const REFRESH_MS = 30000;
const SNAP_PX = 6;

// WIDGET_KEYS are keys the widget's own controls (the bar, the player,
// fields) answer; they do not reach the page's other key handlers.
const WIDGET_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', '+', '=', '-', 'h', 'H', ' ', 'Enter']);

class Timeline {
  constructor(container, ctx) {
    this.ctx = ctx;
    this.camera = ctx.camera;
    this.canExport = Array.isArray(ctx.rights) ? ctx.rights.includes('export') : true;
    this.spans = [];
    this.windowEnd = Date.now(); // the window is [windowEnd - 24 h, windowEnd)
    this.follow = true; // the window follows now
    this.clip = null; // {url, start, end, objectURL}
    this.mode = 'live';
    this.destroyed = false;
    this.error = '';
    this.build(container);
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  // build: (Function over 80 lines: one DOM tree, each node named once.)
  build(container) {
    const root = node('div', 'rec');
    root.dataset.camera = this.camera;
    root.dataset.mode = 'live';
    this.root = root;
    this.video = node('video', 'rec-video');
    this.video.controls = true;
    this.video.playsInline = true;
    this.video.muted = true;
    this.video.hidden = true;
    this.video.disablePictureInPicture = true;

    const head = node('div', 'rec-head');
    this.modeEl = node('span', 'rec-mode', 'LIVE');
    this.timeEl = node('time', 'rec-time');
    this.liveBtn = button('rec-live', 'Back to live');
    this.liveBtn.hidden = true;
    this.exportBtn = button('rec-export-open', 'Export…');
    this.exportBtn.hidden = !this.canExport;
    const nav = node('span', 'rec-nav');
    this.prevBtn = button('btn-ghost rec-prev', '‹ 24 h');
    this.nextBtn = button('btn-ghost rec-next', '24 h ›');
    this.nowBtn = button('btn-ghost rec-now', 'Now');
    nav.append(this.prevBtn, this.nextBtn, this.nowBtn);
    this.gotoForm = node('form', 'rec-goto');
    this.gotoIn = node('input', 'rec-goto-time');
    this.gotoIn.type = 'text';
    this.gotoIn.spellcheck = false;
    this.gotoIn.placeholder = 'HH:MM:SS or 2026-11-30T14:02:00Z';
    this.gotoIn.setAttribute('aria-label', 'Play from a time: local HH:MM[:SS] or RFC 3339 UTC');
    const goBtn = node('button', 'btn rec-goto-play', 'Play from');
    goBtn.type = 'submit';
    this.gotoForm.append(this.gotoIn, goBtn);
    head.append(this.modeEl, this.timeEl, this.liveBtn, this.exportBtn, this.gotoForm, nav);

    this.track = node('div', 'rec-track');
    this.track.tabIndex = 0;
    this.track.setAttribute('role', 'group');
    this.track.setAttribute('aria-label', 'Recorded spans of the last 24 hours: click to play from a time');
    this.spansEl = node('div', 'rec-spans');
    this.cursor = node('div', 'rec-cursor');
    this.hover = node('div', 'rec-hover');
    this.hover.hidden = true;
    this.track.append(this.spansEl, this.cursor, this.hover);
    this.axis = node('div', 'rec-axis');
    this.range = node('div', 'rec-range');

    this.exportForm = new ExportForm(this.camera, this.ctx.api, () => ({ mode: this.mode, t: this.position() }));

    this.msg = node('p', 'rec-msg');
    this.msg.setAttribute('role', 'status');
    root.append(this.video, head, this.track, this.axis, this.range, this.msg, this.exportForm.form);
    container.replaceChildren(root);
    this.wire();
  }

  wire() {
    this.track.addEventListener('click', (ev) => this.playAt(this.snap(ev.clientX)));
    this.track.addEventListener('mousemove', (ev) => {
      const t = this.timeAt(ev.clientX);
      this.hover.hidden = false;
      this.hover.style.left = this.pct(t) + '%';
      this.track.title = bothZones(t) + (this.spanAt(t) ? '' : ' (not recorded)');
    });
    this.track.addEventListener('mouseleave', () => { this.hover.hidden = true; });
    this.track.addEventListener('keydown', (ev) => {
      if (this.mode !== 'playback' || (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight')) return;
      ev.preventDefault();
      this.playAt(this.position() + (ev.key === 'ArrowLeft' ? -10000 : 10000));
    });
    // keys used inside the widget stay in it: the single view's PTZ pad
    // steers with the arrows, + - and H anywhere in the view, and Esc closes
    // the view (Esc in one of the widget's fields only leaves the field)
    this.root.addEventListener('keydown', (ev) => {
      const field = ev.target && (ev.target.tagName === 'INPUT' || ev.target.tagName === 'TEXTAREA');
      if (ev.key === 'Escape' && field) {
        ev.target.blur();
        ev.stopPropagation();
      } else if (WIDGET_KEYS.has(ev.key)) {
        ev.stopPropagation();
      }
    });
    this.liveBtn.addEventListener('click', () => this.goLive());
    this.prevBtn.addEventListener('click', () => this.shift(-DAY_MS));
    this.nextBtn.addEventListener('click', () => this.shift(DAY_MS));
    this.nowBtn.addEventListener('click', () => { this.follow = true; this.refresh(); });
    this.exportBtn.addEventListener('click', () => this.exportForm.open());
    this.gotoForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = this.gotoTime(this.gotoIn.value);
      if (!Number.isFinite(t)) {
        this.say('Enter a local time such as 14:02 or 14:02:30, or a UTC time such as 2026-11-30T14:02:00Z.');
        return;
      }
      if (t < this.from() || t > this.windowEnd) {
        this.follow = false;
        this.windowEnd = Math.min(t + DAY_MS / 2, Date.now());
        this.refresh().then(() => this.playAt(t));
        return;
      }
      this.playAt(t);
    });
    this.video.addEventListener('timeupdate', () => this.renderCursor());
    this.video.addEventListener('error', () => {
      if (this.mode === 'playback' && this.video.error) this.say('The recording cannot be played (' + (this.video.error.message || 'media error') + ').');
    });
  }

  say(text) {
    this.error = text;
    this.msg.textContent = text;
  }

  // ------------------------------------------------------------ geometry

  from() { return this.windowEnd - DAY_MS; }

  pct(t) { return Math.min(Math.max((t - this.from()) / DAY_MS, 0), 1) * 100; }

  timeAt(clientX) {
    const r = this.track.getBoundingClientRect();
    const f = r.width > 0 ? Math.min(Math.max((clientX - r.left) / r.width, 0), 1) : 1;
    return this.from() + f * DAY_MS;
  }

  spanAt(t) { return this.spans.find((s) => t >= s.start && t < s.end) || null; }

  // snap turns a click into a time: on a span, that time; within a few
  // pixels of one (a minute of recording is under a pixel wide), that
  // span's nearest recorded time (its start when it is that narrow).
  snap(clientX) {
    const t = this.timeAt(clientX);
    if (this.spanAt(t)) return t;
    const r = this.track.getBoundingClientRect();
    const tol = r.width > 0 ? (SNAP_PX / r.width) * DAY_MS : 0;
    let best = null;
    let dist = Infinity;
    for (const s of this.spans) {
      const d = t < s.start ? s.start - t : t - s.end;
      if (d <= tol && d < dist) {
        best = s;
        dist = d;
      }
    }
    if (!best) return t;
    if (best.end - best.start <= tol || t < best.start) return best.start;
    return Math.max(best.start, best.end - 1000);
  }

  // gotoTime reads the "go to" field: an RFC 3339 time, or HH:MM[:SS] of
  // the local day shown (the newest one at or before the window's end).
  gotoTime(text) {
    const v = text.trim();
    const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(v);
    if (!m) return Date.parse(v);
    const d = new Date(this.windowEnd);
    d.setHours(Number(m[1]), Number(m[2]), Number(m[3] || 0), 0);
    let t = d.getTime();
    if (t > this.windowEnd) t -= DAY_MS;
    return Number(m[1]) < 24 && Number(m[2]) < 60 ? t : NaN;
  }

  position() {
    if (this.mode === 'playback' && this.clip) return this.clip.start + this.video.currentTime * 1000;
    return Date.now();
  }

  // ------------------------------------------------------------ data

  shift(ms) {
    this.follow = false;
    this.windowEnd = Math.min(this.windowEnd + ms, Date.now());
    this.refresh();
  }

  async refresh() {
    if (this.destroyed) return;
    if (this.follow) this.windowEnd = Date.now();
    const q = '?start=' + encodeURIComponent(iso(this.from())) + '&end=' + encodeURIComponent(iso(this.windowEnd));
    let res;
    try {
      res = await this.ctx.api('/api/v1/cameras/' + encodeURIComponent(this.camera) + '/recordings' + q);
    } catch {
      return; // signed out, or the gateway is unreachable: the host shows it
    }
    if (this.destroyed) return;
    if (res.status !== 200) {
      this.say((await errorSentence(res)) || 'Recordings unavailable (HTTP ' + res.status + ').');
      this.root.dataset.state = res.status === 403 ? 'forbidden' : 'error';
      this.spans = [];
      this.render();
      return;
    }
    try {
      this.spans = parseSpans(await res.json());
    } catch {
      this.spans = [];
    }
    this.root.dataset.state = 'ready';
    this.render();
  }

  render() {
    const from = this.from();
    const spans = [];
    for (const s of this.spans) {
      if (s.end <= from || s.start >= this.windowEnd) continue;
      const d = node('div', 'rec-span');
      d.style.left = this.pct(s.start) + '%';
      d.style.width = Math.max(this.pct(s.end) - this.pct(s.start), 0) + '%';
      spans.push(d);
    }
    this.spansEl.replaceChildren(...spans);
    const ticks = [];
    const step = 3 * 3600 * 1000;
    const first = Math.ceil(from / step) * step;
    for (let t = first; t < this.windowEnd; t += step) {
      const tk = node('span', 'rec-tick', tickFmt.format(new Date(t)));
      tk.style.left = this.pct(t) + '%';
      ticks.push(tk);
    }
    this.axis.replaceChildren(...ticks);
    const recorded = this.spans.reduce((n, s) => n + Math.max(0, Math.min(s.end, this.windowEnd) - Math.max(s.start, from)), 0);
    this.range.textContent = bothZones(from) + '  →  ' + bothZones(this.windowEnd) + ' · ' +
      (recorded ? duration(recorded) + ' recorded' : 'nothing recorded');
    if (this.spans.length === 0 && this.root.dataset.state === 'ready') this.say('Nothing recorded in these 24 hours.');
    else if (this.root.dataset.state === 'ready' && this.mode === 'live') this.say('');
    this.renderCursor();
  }

  renderCursor() {
    const t = this.position();
    this.cursor.style.left = this.pct(t) + '%';
    this.timeEl.textContent = bothZones(t);
    this.timeEl.dateTime = iso(t);
  }

  // ------------------------------------------------------------ playback

  setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.root.dataset.mode = mode;
    this.modeEl.textContent = mode === 'live' ? 'LIVE' : 'PLAYBACK';
    this.liveBtn.hidden = mode === 'live';
    this.video.hidden = mode === 'live';
    if (this.ctx.onMode) this.ctx.onMode(mode);
    document.dispatchEvent(new CustomEvent('cordon:playback', { detail: { camera: this.camera, mode } }));
  }

  // playAt plays from time t: the keyframe at or before it, or the start
  // of the next span when nothing was recorded at t.
  async playAt(t) {
    let span = this.spanAt(t);
    let note = '';
    if (!span) {
      span = this.spans.find((s) => s.start > t) || null;
      if (!span) {
        this.say('Nothing recorded at ' + bothZones(t) + ' or after it in this window.');
        return;
      }
      note = 'Nothing recorded at ' + bothZones(t) + '; playing the next recording.';
      t = span.start;
    }
    const c = this.clip;
    if (c && t >= c.start && t < c.end && this.mode === 'playback') {
      this.video.currentTime = (t - c.start) / 1000;
      this.renderCursor();
      return;
    }
    const useWorker = await playbackWorker();
    this.via = useWorker ? 'worker' : 'blob';
    const maxMs = useWorker ? MAX_CLIP_MS : BLOB_CLIP_MS;
    const durS = Math.max(1, Math.ceil(Math.min(maxMs, span.end - t) / 1000));
    const url = '/api/v1/cameras/' + encodeURIComponent(this.camera) + '/recording?start=' +
      encodeURIComponent(iso(t)) + '&duration=' + durS + 's';
    this.say('Loading the recording…');
    // the header fetch checks the request and tells where the clip starts
    let res;
    try {
      res = await this.ctx.api(url, useWorker ? { headers: { Range: 'bytes=0-0' } } : {});
    } catch {
      return;
    }
    if (this.destroyed) return;
    if (res.status !== 200 && res.status !== 206) {
      this.say((await errorSentence(res)) || 'Playback refused (HTTP ' + res.status + ').');
      return;
    }
    const start = Date.parse(res.headers.get('Cordon-Clip-Start'));
    const end = Date.parse(res.headers.get('Cordon-Clip-End'));
    let src = url;
    let objectURL = null;
    if (useWorker) {
      await res.arrayBuffer().catch(() => null);
    } else {
      objectURL = URL.createObjectURL(await res.blob());
      src = objectURL;
    }
    this.releaseClip();
    this.clip = { url, start: Number.isFinite(start) ? start : t, end: Number.isFinite(end) ? end : span.end, objectURL };
    this.setMode('playback');
    this.say(note);
    const offset = Math.max(0, (t - this.clip.start) / 1000);
    this.video.addEventListener('loadedmetadata', () => {
      if (offset > 0) this.video.currentTime = offset;
      const p = this.video.play();
      if (p) p.catch(() => {});
    }, { once: true });
    this.video.src = src;
  }

  releaseClip() {
    if (this.clip && this.clip.objectURL) URL.revokeObjectURL(this.clip.objectURL);
    this.clip = null;
  }

  goLive() {
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.releaseClip();
    this.setMode('live');
    this.say('');
    this.renderCursor();
  }

  // ------------------------------------------------------------ life

  stats() {
    const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    return {
      mode: this.mode,
      state: this.root.dataset.state || '',
      spans: this.spans.map((s) => ({ start: iso(s.start), end: iso(s.end) })),
      position: iso(this.position()),
      clipStart: this.clip ? iso(this.clip.start) : null,
      currentTime: this.video.currentTime,
      paused: this.video.paused,
      framesDecoded: q ? q.totalVideoFrames : 0,
      width: this.video.videoWidth,
      error: this.error,
      lastExport: this.exportForm.lastExport,
      via: this.via || '',
    };
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.timer);
    this.goLive();
    this.root.remove();
  }
}

// mountTimeline puts the recordings widget of one camera into container
// (emptied first). ctx: {camera, rights (the camera's rights from
// GET /api/v1/cameras, or null when unknown), api(path, options) (the
// page's authenticated fetch), onMode(mode) (optional: 'live' |
// 'playback', so the host can pause or hide its live picture; the same is
// dispatched on document as 'cordon:playback' {camera, mode})}. Returns
// {destroy(), stats(), playAt(ms)}. The page answers the playback
// worker's token requests (recutil.js answerPlaybackWorker).
export function mountTimeline(container, ctx) {
  const t = new Timeline(container, ctx);
  return {
    destroy: () => t.destroy(),
    stats: () => t.stats(),
    playAt: (ms) => t.playAt(ms),
  };
}

// followSingleView mounts the widget into the single-camera view's
// container while it is open: the view dispatches on document
// 'cordon:single-open' and 'cordon:single-update' {camera, name, rights,
// container, api} and 'cordon:single-close' {camera} (single.js). For a
// camera without the playback right the container stays empty. current()
// returns the mounted widget (or null) for the page's test hook.
export function followSingleView() {
  let mounted = null;
  let key = '';
  const unmount = () => {
    if (mounted) mounted.destroy();
    mounted = null;
    key = '';
  };
  const mount = (ev) => {
    const d = ev.detail || {};
    if (!d.container || typeof d.camera !== 'string' || typeof d.api !== 'function') return;
    const rights = Array.isArray(d.rights) ? d.rights : null;
    const k = d.camera + '|' + (rights ? rights.join(',') : '?');
    if (mounted && k === key) return;
    unmount();
    if (rights && !rights.includes('playback')) {
      d.container.replaceChildren();
      return;
    }
    mounted = mountTimeline(d.container, { camera: d.camera, rights, api: d.api });
    key = k;
  };
  document.addEventListener('cordon:single-open', mount);
  document.addEventListener('cordon:single-update', mount);
  document.addEventListener('cordon:single-close', unmount);
  return { current: () => mounted, close: unmount };
}
