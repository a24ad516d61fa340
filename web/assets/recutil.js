// cordon recordings: what timeline.js and evidence.js share: times in
// UTC and local time, small DOM helpers, and the playback service worker's
// registration (see playback-sw.js).

export const DAY_MS = 24 * 3600 * 1000;
const SW_URL = '/playback-sw.js';

// ---------------------------------------------------------------- time

const utcFmt = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const localFmt = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
});
export const tickFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

// bothZones: "2026-11-30 14:02:03 UTC · 14:02:03 GMT" (local zone named as
// the browser names it: GMT/BST in the UK).
export function bothZones(ms) {
  const d = new Date(ms);
  const p = Object.fromEntries(utcFmt.formatToParts(d).map((x) => [x.type, x.value]));
  const utc = p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute + ':' + p.second + ' UTC';
  return utc + ' · ' + localFmt.format(d);
}

// duration: "8 s", "12 min", "3.5 h".
export function duration(ms) {
  if (ms < 60000) return Math.round(ms / 1000) + ' s';
  if (ms < 3600000) return Math.round(ms / 60000) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}

export function iso(ms) {
  return new Date(ms).toISOString(); // RFC 3339, UTC, milliseconds
}

export function parseSpans(list) {
  if (!Array.isArray(list)) return [];
  const out = [];
  for (const s of list) {
    const start = Date.parse(s && s.start);
    const end = Date.parse(s && s.end);
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) out.push({ start, end });
  }
  return out.sort((a, b) => a.start - b.start);
}

// ---------------------------------------------------------------- worker

export const worker = { ready: null, answering: false, token: () => null };

// answerPlaybackWorker makes this page answer the playback worker's token
// requests with token(). Only the page that holds the token calls it (at
// start-up); it registers nothing.
export function answerPlaybackWorker(token) {
  worker.token = token;
  const sw = navigator.serviceWorker;
  if (!sw || worker.answering) return;
  worker.answering = true;
  sw.addEventListener('message', (ev) => {
    const src = ev.source;
    if (!ev.data || ev.data.type !== 'cordon-token-request' || !ev.ports[0]) return;
    if (!src || !src.scriptURL || new URL(src.scriptURL).pathname !== SW_URL) return;
    ev.ports[0].postMessage({ token: worker.token() || null });
  });
  sw.startMessages();
}

// playbackWorker registers the service worker on first use (the first
// recording played) and resolves to true once the page is controlled
// (media requests then carry the header), false when unavailable.
export function playbackWorker() {
  if (worker.ready) return worker.ready;
  const sw = navigator.serviceWorker;
  // (window.cordonNoPlaybackWorker: a test hook that forces the fallback)
  if (!sw || !window.isSecureContext || !worker.answering || window.cordonNoPlaybackWorker === true) {
    worker.ready = Promise.resolve(false);
    return worker.ready;
  }
  worker.ready = sw.register(SW_URL, { scope: '/' }).then(() => {
    if (sw.controller) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(!!sw.controller), 10000);
      sw.addEventListener('controllerchange', () => {
        clearTimeout(timer);
        resolve(true);
      }, { once: true });
    });
  }).catch((err) => {
    console.warn('cordon: playback worker unavailable; clips are fetched whole', err);
    return false;
  });
  return worker.ready;
}

// ---------------------------------------------------------------- DOM

export function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text) n.textContent = text;
  return n;
}

export function button(cls, text) {
  const b = node('button', 'btn ' + cls, text);
  b.type = 'button';
  return b;
}
