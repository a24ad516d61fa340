// cordon viewer: sign in, list the cameras this account may view, play each
// over WHEP. No inline script or style (strict CSP); all text set with
// textContent; the token lives in this module's memory only (no cookie, no
// storage, never in a URL) so a reload means signing in again.

import { WhepError, errorSentence, retryAfterSeconds } from './whep.js';
import { LivePlayer, BACKOFF_MAX_MS, retryAfterMs } from './live.js';
import { parseEgress, describeEgress } from './egress.js';
import { initDirectorySignIn, describeAccount } from './oidc.js';
import { HardeningPanel } from './hardening.js';
import { SingleView } from './single.js';
import { followSingleView } from './timeline.js';
import { answerPlaybackWorker } from './recutil.js';
import { exportKeyText } from './evidence.js';

const POLL_MS = 5000;
const EGRESS_EVERY = 3; // polls between egress refreshes (15 s)
const DISCONNECT_GRACE_MS = 2000; // ICE "disconnected" may heal by itself
const STALL_MS = 8000; // video track muted (no packets) this long: reconnect

// data-state values (stable, for tests and CSS) and the text shown.
const STATE_TEXT = {
  'connecting': 'connecting',
  'playing': 'playing',
  'reconnecting': 'reconnecting',
  'offline': 'camera offline',
  'forbidden': 'not permitted',
  'signed-out': 'signed out',
  'unsupported': 'unsupported',
  'error': 'error',
};

const $ = (id) => document.getElementById(id);
const el = {
  signin: $('signin'),
  form: $('signin-form'),
  username: $('username'),
  password: $('password'),
  submit: $('signin-submit'),
  signinError: $('signin-error'),
  viewer: $('viewer'),
  grid: $('grid'),
  empty: $('empty'),
  summary: $('summary'),
  status: $('status'),
  clock: $('clock'),
  session: $('session'),
  sessionUser: $('session-user'),
  sessionRole: $('session-role'),
  signout: $('signout'),
  egressPanel: $('egress-panel'),
  egressList: $('egress-list'),
  template: $('tile-template'),
  exportKey: $('export-key'),
};
const hardening = new HardeningPanel(el.egressPanel); // admin panel beside the egress report

const app = {
  token: null, // bearer token: memory only
  user: '',
  gen: 0, // bumped on every sign-in/out: stale callbacks compare and bail
  tiles: new Map(), // camera id -> Tile
  admin: false,
  egress: new Map(),
  pollTimer: null,
  pollCount: 0,
  expiryTimer: null,
  lockoutTimer: null,
  exportKeyFor: null, // app.admin when the export key line was last loaded
  recs: null, // followSingleView(): the recordings widget in the single view
};

class SignedOutError extends Error {}

// ---------------------------------------------------------------- helpers

function show(node, visible) {
  node.hidden = !visible;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

function clockText(d) {
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
    ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

function timeText(d) {
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

function setStatus(text, warn) {
  el.status.textContent = text;
  el.status.classList.toggle('is-warn', !!warn);
}

function tickClock() {
  const now = new Date();
  el.clock.textContent = clockText(now);
  el.clock.dateTime = now.toISOString();
}

// api calls the gateway with the bearer token. A 401 signs the page out.
async function api(path, options) {
  const gen = app.gen;
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({}, opts.headers || {}, { 'Authorization': 'Bearer ' + app.token });
  opts.cache = 'no-store';
  opts.credentials = 'omit';
  opts.redirect = 'error';
  const res = await fetch(path, opts);
  if (gen !== app.gen) throw new SignedOutError('stale');
  if (res.status === 401) {
    signedOut('Your session has ended. Sign in again.');
    throw new SignedOutError('401');
  }
  return res;
}

// ---------------------------------------------------------------- tiles

class Tile {
  constructor(cam) {
    const root = el.template.content.firstElementChild.cloneNode(true);
    this.root = root;
    this.id = cam.id;
    this.video = root.querySelector('video.cordon-video');
    this.nameEl = root.querySelector('.tile-name');
    this.badge = root.querySelector('.tile-badge');
    this.message = root.querySelector('.tile-message');
    this.idEl = root.querySelector('.tile-id');
    this.codecEl = root.querySelector('.tile-codec');
    this.viewersEl = root.querySelector('.tile-viewers');
    this.egressEl = root.querySelector('.tile-egress');
    this.recButton = root.querySelector('.tile-recordings');
    this.recButton.addEventListener('click', (ev) => {
      ev.stopPropagation(); // not a click on the tile itself
      openRecordings(this);
    });
    root.dataset.camera = cam.id;
    this.idEl.textContent = cam.id;

    this.state = '';
    this.online = cam.online !== false;
    this.player = new LivePlayer(this.video, {
      target: () => {
        if (!app.token) return null;
        const gen = app.gen;
        const url = '/whep/' + encodeURIComponent(this.id) + (this.sub ? '?stream=sub' : '');
        return { url, token: app.token, current: () => gen === app.gen };
      },
      connecting: () => {
        if (this.state !== 'reconnecting') this.setState('connecting');
      },
      playing: () => this.setState('playing'),
      isPlaying: () => this.state === 'playing',
      reconnecting: (text) => this.setState('reconnecting', text),
      failed: (err) => this.startFailed(err),
      watch: (session, current) => this.watch(session, current),
    });
    // click or Enter: the single-camera view (single.js)
    root.tabIndex = 0;
    root.addEventListener('click', () => openSingle(this));
    root.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && ev.target === root) {
        ev.preventDefault();
        openSingle(this);
      }
    });
    this.message.addEventListener('click', (ev) => {
      if (this.state === 'unsupported' || this.state === 'error') {
        ev.stopPropagation();
        this.connect();
      }
    });
    this.update(cam);
  }

  setState(state, detail) {
    if (this.state !== state) {
      if (this.state) this.root.classList.remove('state-' + this.state);
      this.root.classList.add('state-' + state);
      this.state = state;
      this.root.dataset.state = state;
      this.badge.textContent = STATE_TEXT[state] || state;
    }
    let msg = detail || '';
    if (!msg && state !== 'playing') msg = STATE_TEXT[state] || state;
    this.message.textContent = msg;
    this.message.classList.toggle('is-actionable', state === 'unsupported' || state === 'error');
    renderSummary();
  }

  update(cam) {
    this.cam = cam;
    this.name = typeof cam.name === 'string' && cam.name ? cam.name : cam.id;
    this.nameEl.textContent = this.name;
    this.video.setAttribute('aria-label', this.name);
    this.root.setAttribute('aria-label', this.name + ': open the single view');
    // the grid plays the sub stream when the camera has one
    const sub = cam.sub_stream === true;
    if (this.sub !== undefined && sub !== this.sub && this.player.session) this.player.schedule(0);
    this.sub = sub;
    const codecs = [cam.video_codec, cam.audio_codec].filter((c) => typeof c === 'string' && c);
    this.codecEl.textContent = codecs.join(' · ');
    const v = Number.isFinite(cam.viewers) ? cam.viewers : null;
    this.viewersEl.textContent = v === null ? '' : (v === 1 ? '1 viewer' : v + ' viewers');
    // rights: null when the gateway does not say (then the recordings API decides)
    this.rights = Array.isArray(cam.rights) ? cam.rights : null;
    show(this.recButton, this.rights === null || this.rights.includes('playback'));

    // An on-demand camera is pulled only while someone watches: it reads
    // offline while idle, and asking for it (WHEP POST) is what starts it.
    const available = cam.online !== false || cam.on_demand === true;
    const wasAvailable = this.online;
    this.online = available;
    const live = this.player.live();
    if (!available) {
      // Keep a live session: the gateway resumes it when the camera comes
      // back. Without one, show offline and wait for the camera list.
      if (live) {
        if (this.state !== 'offline') this.setState('offline');
      } else if (this.state !== 'offline') {
        this.goOffline(null);
      }
    } else if (!live && (!wasAvailable || this.state === '')) {
      if (this.state === '' || (this.state === 'offline' && !this.player.pending('retry'))) this.connect();
    }
  }

  // teardown closes the peer connection and DELETEs the WHEP session.
  teardown(keepalive) {
    return this.player.teardown(keepalive);
  }

  connect() {
    return this.player.connect();
  }

  goOffline(retryAfter) {
    this.teardown(false);
    this.setState('offline');
    if (retryAfter !== null) this.player.schedule(retryAfterMs(retryAfter) ?? this.player.nextBackoff());
  }

  // watch adds the grid's own checks to a new session: a video track
  // muted (no packets) too long, ICE "disconnected" that does not heal.
  watch(session, current) {
    const player = this.player;
    session.addEventListener('track', (ev) => {
      const track = ev.detail;
      if (track.kind !== 'video') return;
      track.addEventListener('mute', () => {
        if (!current()) return;
        player.later('stall', STALL_MS, () => {
          if (current() && track.muted) player.retry('video stalled');
        });
      });
      track.addEventListener('unmute', () => player.clear('stall'));
    });
    session.addEventListener('state', (ev) => {
      if (!current()) return;
      const { connection, ice } = ev.detail;
      if (ice === 'disconnected' || connection === 'disconnected') {
        if (player.pending('grace')) return;
        this.setState('reconnecting', 'connection interrupted');
        player.later('grace', DISCONNECT_GRACE_MS, () => {
          if (current()) player.retry('connection lost');
        });
      } else if ((ice === 'connected' || ice === 'completed') && player.pending('grace')) {
        player.clear('grace');
        const v = this.video;
        if (!v.paused && v.readyState >= 2) this.setState('playing');
      }
    });
  }

  startFailed(err) {
    const status = err instanceof WhepError ? err.status : -1;
    const text = err instanceof WhepError ? err.message : '';
    switch (status) {
      case 401:
        signedOut('Your session has ended. Sign in again.');
        return;
      case 403:
        this.setState('forbidden');
        return; // no retry: permissions do not change by retrying
      case 503:
        this.goOffline(err.retryAfter === null ? 0 : err.retryAfter);
        return;
      case 400:
        this.setState('unsupported', (text || 'no codec in common') + ' · click to retry');
        return;
      case 422: // B-frames: the sentence names the fix
        this.setState('unsupported', text || 'this stream cannot be played in a browser');
        return;
      case 404:
        this.setState('error', 'unknown camera');
        this.player.schedule(BACKOFF_MAX_MS);
        return;
      default: {
        const ms = this.player.nextBackoff();
        const why = status === 0 ? 'gateway unreachable' :
          (status > 0 ? (text || 'HTTP ' + status) : 'browser could not start WebRTC');
        if (status < 0) console.warn('cordon: WHEP start failed for', this.id, err);
        this.setState('reconnecting', why + ' · retry in ' + Math.round(ms / 1000) + ' s');
        this.player.schedule(ms);
      }
    }
  }

  setEgress(text) {
    this.egressEl.textContent = text;
    show(this.egressEl, !!text);
  }

  destroy(keepalive) {
    const p = this.teardown(keepalive);
    this.root.remove();
    return p;
  }
}

// ---------------------------------------------------------------- rendering

function renderSummary() {
  let playing = 0;
  let offline = 0;
  let denied = 0;
  let trouble = 0;
  for (const t of app.tiles.values()) {
    if (t.state === 'playing') playing++;
    else if (t.state === 'offline') offline++;
    else if (t.state === 'forbidden') denied++;
    else if (t.state === 'reconnecting' || t.state === 'error' || t.state === 'unsupported') trouble++;
  }
  const n = app.tiles.size;
  const parts = [n + (n === 1 ? ' camera' : ' cameras'), playing + ' playing'];
  if (offline) parts.push(offline + ' offline');
  if (denied) parts.push(denied + ' not permitted');
  if (trouble) parts.push(trouble + ' degraded');
  el.summary.textContent = parts.join(' · ');
}

function renderEgress() {
  hardening.sync(app.admin ? api : null, (id) => (app.tiles.get(id) || {}).name);
  const now = Date.now();
  el.egressList.replaceChildren();
  for (const t of app.tiles.values()) {
    t.setEgress(app.admin ? describeEgress(app.egress.get(t.id), now) : '');
  }
  if (!app.admin) {
    show(el.egressPanel, false);
    return;
  }
  let any = false;
  for (const [camera, entry] of app.egress) {
    const text = describeEgress(entry, now);
    if (!text) continue;
    any = true;
    const li = document.createElement('li');
    const cam = document.createElement('span');
    cam.className = 'egress-camera';
    const tile = app.tiles.get(camera);
    cam.textContent = tile ? tile.name + ' (' + camera + ')' : camera;
    const what = document.createElement('span');
    what.className = 'egress-what';
    what.textContent = text;
    li.append(cam, what);
    el.egressList.append(li);
  }
  if (!any) {
    const li = document.createElement('li');
    li.className = 'egress-none';
    li.textContent = 'No camera has tried to reach a vendor cloud.';
    el.egressList.append(li);
  }
  show(el.egressPanel, true);
}

// ---------------------------------------------------------------- recordings

// openRecordings opens the camera's single view, which hosts its
// recordings (timeline.js follows the view's hook), and brings the
// timeline into sight.
function openRecordings(tile) {
  openSingle(tile);
  const c = document.getElementById('single-recordings');
  if (c && c.scrollIntoView) c.scrollIntoView({ block: 'nearest' });
}

// ---------------------------------------------------------------- polling

async function refreshCameras() {
  let res;
  try {
    res = await api('/api/v1/cameras');
  } catch (err) {
    if (!(err instanceof SignedOutError)) setStatus('gateway unreachable · retrying', true);
    return false;
  }
  if (res.status !== 200) {
    const msg = await errorSentence(res);
    setStatus('camera list unavailable: ' + (msg || 'HTTP ' + res.status), true);
    return false;
  }
  let list;
  try {
    list = await res.json();
  } catch {
    setStatus('camera list unreadable', true);
    return false;
  }
  if (!Array.isArray(list)) list = [];
  const seen = new Set();
  for (const cam of list) {
    if (!cam || typeof cam.id !== 'string' || cam.id === '' || seen.has(cam.id)) continue;
    seen.add(cam.id);
    let tile = app.tiles.get(cam.id);
    if (tile) {
      tile.update(cam);
    } else {
      tile = new Tile(cam);
      app.tiles.set(cam.id, tile);
      el.grid.append(tile.root);
    }
  }
  for (const [id, tile] of app.tiles) {
    if (!seen.has(id)) {
      tile.destroy(false);
      app.tiles.delete(id);
    } else if (single.isOpen()) {
      single.update(tile.cam);
    }
  }
  if (single.isOpen() && !app.tiles.has(single.cam.id)) single.close();
  show(el.empty, app.tiles.size === 0);
  renderSummary();
  setStatus('updated ' + timeText(new Date()), false);
  return true;
}

async function refreshEgress() {
  let res;
  try {
    res = await api('/api/v1/egress');
  } catch {
    return;
  }
  if (res.status === 200) {
    try {
      app.egress = parseEgress(await res.json());
      app.admin = true;
    } catch {
      app.egress = new Map();
    }
  } else {
    // 403: not an admin. 404 or anything else: no report to show.
    app.admin = false;
    app.egress = new Map();
  }
  show(el.sessionRole, app.admin);
  renderEgress();
  renderExportKey();
}

// renderExportKey shows administrators the export key's fingerprint
// (asked once per sign-in).
async function renderExportKey() {
  if (app.admin === app.exportKeyFor) return;
  app.exportKeyFor = app.admin;
  const gen = app.gen;
  const text = app.admin ? await exportKeyText(api) : '';
  if (gen !== app.gen) return;
  el.exportKey.textContent = text;
  show(el.exportKey, !!text);
}

function schedulePoll() {
  clearTimeout(app.pollTimer);
  const gen = app.gen;
  app.pollTimer = setTimeout(async () => {
    if (gen !== app.gen) return;
    app.pollCount++;
    await refreshCameras();
    if (gen !== app.gen) return;
    if (app.admin && app.pollCount % EGRESS_EVERY === 0) await refreshEgress();
    else if (app.admin) renderEgress(); // keep "last 2 min ago" current
    if (gen === app.gen) schedulePoll();
  }, POLL_MS);
}

// ---------------------------------------------------------------- sign-in/out

function showSignin(message) {
  show(el.viewer, false);
  show(el.session, false);
  show(el.signin, true);
  setSigninError(message || '');
  el.password.value = '';
  (el.username.value ? el.password : el.username).focus();
}

function setSigninError(text) {
  el.signinError.textContent = text;
  show(el.signinError, !!text);
}

function lockout(seconds) {
  clearInterval(app.lockoutTimer);
  let left = seconds;
  const render = () => {
    setSigninError('Too many failed attempts. Try again in ' + left + ' s.');
  };
  el.submit.disabled = true;
  render();
  app.lockoutTimer = setInterval(() => {
    left--;
    if (left <= 0) {
      clearInterval(app.lockoutTimer);
      el.submit.disabled = false;
      setSigninError('');
      return;
    }
    render();
  }, 1000);
}

async function signIn(ev) {
  ev.preventDefault();
  const username = el.username.value.trim();
  const password = el.password.value;
  if (!username || !password) {
    setSigninError('Enter your username and password.');
    return;
  }
  el.submit.disabled = true;
  setSigninError('');
  let res;
  try {
    res = await fetch('/api/v1/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    el.submit.disabled = false;
    setSigninError('Cannot reach the gateway.');
    return;
  }
  el.password.value = '';
  if (res.status === 429) {
    const s = retryAfterSeconds(res.headers.get('Retry-After'));
    if (s && s > 0) {
      lockout(s);
    } else {
      el.submit.disabled = false;
      setSigninError('Too many failed attempts. Try again later.');
    }
    return;
  }
  el.submit.disabled = false;
  if (res.status === 401) {
    setSigninError('invalid username or password');
    el.password.focus();
    return;
  }
  let body = null;
  if (res.status === 200) {
    try {
      body = await res.json();
    } catch {
      body = null;
    }
  }
  if (!body || typeof body.token !== 'string' || !body.token) {
    const msg = res.status === 200 ? '' : await errorSentence(res);
    setSigninError('Sign-in failed: ' + (msg || 'HTTP ' + res.status) + '.');
    return;
  }
  startSession(username, body.token, body.expires_at);
}

async function startSession(username, token, expiresAt) {
  single.close(true);
  clearTiles(false);
  app.gen++;
  app.token = token;
  app.user = username;
  app.admin = false;
  app.egress = new Map();
  app.pollCount = 0;
  clearTimeout(app.expiryTimer);
  const exp = typeof expiresAt === 'string' ? Date.parse(expiresAt) : NaN;
  if (!Number.isNaN(exp)) {
    // setTimeout cannot wait longer than ~24.8 days.
    const ms = Math.min(Math.max(exp - Date.now(), 0), 0x7fffffff);
    app.expiryTimer = setTimeout(() => signedOut('Your session has expired. Sign in again.'), ms);
  }
  el.sessionUser.textContent = username;
  show(el.sessionRole, false);
  show(el.egressPanel, false);
  show(el.signin, false);
  show(el.session, true);
  show(el.viewer, true);
  setStatus('loading cameras…', false);
  const gen = app.gen;
  describeAccount(token, () => gen === app.gen); // directory users with no rights (oidc.js)
  await refreshCameras();
  if (gen !== app.gen) return;
  await refreshEgress();
  if (gen !== app.gen) return;
  schedulePoll();
}

function clearTiles(keepalive) {
  const pending = [];
  for (const tile of app.tiles.values()) pending.push(tile.destroy(keepalive));
  app.tiles.clear();
  el.grid.replaceChildren();
  return Promise.all(pending);
}

function stopSession() {
  if (app.recs) app.recs.close();
  show(el.exportKey, false);
  app.exportKeyFor = null;
  app.gen++;
  clearTimeout(app.pollTimer);
  clearTimeout(app.expiryTimer);
  app.pollTimer = app.expiryTimer = null;
}

// signedOut: the gateway no longer accepts the token (401, expiry). Tiles
// stay in the (hidden) DOM with data-state="signed-out" until the next
// sign-in; their media is torn down.
function signedOut(message) {
  if (!app.token) return;
  single.close(true);
  stopSession();
  for (const tile of app.tiles.values()) {
    tile.teardown(false);
    tile.setState('signed-out');
  }
  app.token = null;
  app.admin = false;
  app.egress = new Map();
  renderEgress();
  setStatus('signed out', true);
  showSignin(message);
}

// signOut: the operator's button. End every WHEP session (while the token
// still works), then the token itself.
async function signOut() {
  if (!app.token) return;
  const token = app.token;
  el.signout.disabled = true;
  single.close(true);
  stopSession();
  const deletes = clearTiles(false);
  await Promise.race([deletes, new Promise((r) => setTimeout(r, 2000))]);
  app.token = null;
  try {
    await fetch('/api/v1/logout', {
      method: 'POST',
      headers: { 'Authorization': 'Bearer ' + token },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    // The token expires on its own; nothing more to do offline.
  }
  el.signout.disabled = false;
  app.admin = false;
  app.egress = new Map();
  renderEgress();
  setStatus('', false);
  showSignin('');
}

// ---------------------------------------------------------------- test hook

// cordonStats(cameraId) -> {framesDecoded, width, height, state}, or null for
// an unknown camera. Read-only; for end-to-end tests and diagnostics.
window.cordonStats = async function cordonStats(cameraId) {
  const tile = app.tiles.get(String(cameraId));
  if (!tile) return null;
  return {
    framesDecoded: await tile.player.framesDecoded(),
    width: tile.video.videoWidth,
    height: tile.video.videoHeight,
    state: tile.state,
  };
};

// ---------------------------------------------------------------- single view

const single = new SingleView({
  api,
  token: () => app.token,
  user: () => app.user,
  signedOut,
  onClose: (id) => {
    show(el.viewer, true);
    const tile = app.tiles.get(id);
    if (tile) tile.root.focus();
  },
});

// openSingle shows one camera large; the tile's picture stays on screen
// until the main stream has a frame.
function openSingle(tile) {
  if (!app.token || !tile.cam) return;
  show(el.viewer, false);
  single.open(tile.cam, tile.player.live() ? tile.player.session.stream : null);
}

// cordonSingleStats() -> {camera, stream, state, framesDecoded, width,
// height, preview}: the single view, for end-to-end tests.
window.cordonSingleStats = () => single.stats();

// cordonPlayback() -> the recordings widget's state in the single view
// (mode, spans, position, frames decoded, last export), or null. For
// end-to-end tests.
window.cordonPlayback = function cordonPlayback() {
  const w = app.recs && app.recs.current();
  return w ? w.stats() : null;
};

// ---------------------------------------------------------------- wiring

function init() {
  tickClock();
  setInterval(tickClock, 1000);
  try {
    el.clock.title = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    el.clock.title = '';
  }
  el.form.addEventListener('submit', signIn);
  el.signout.addEventListener('click', signOut);
  // recordings: the playback worker asks this page (and only it) for the
  // token; the widget itself lives in the single-camera view (its hook)
  answerPlaybackWorker(() => app.token);
  app.recs = followSingleView();
  // playing back a recording takes the live picture's place in the single
  // view (its session goes on; "Back to live" shows it again)
  document.addEventListener('cordon:playback', (ev) => {
    const v = document.getElementById('single');
    if (v) v.dataset.playback = ev.detail && ev.detail.mode === 'playback' ? 'playback' : '';
  });
  for (const b of document.querySelectorAll('.toolbar-layout [data-cols]')) {
    b.addEventListener('click', () => {
      el.grid.dataset.cols = b.dataset.cols;
      for (const o of document.querySelectorAll('.toolbar-layout [data-cols]')) {
        o.classList.toggle('is-active', o === b);
      }
    });
  }
  // Leaving the page: end the WHEP sessions; keepalive lets the DELETEs
  // outlive the document.
  window.addEventListener('pagehide', () => {
    for (const tile of app.tiles.values()) tile.teardown(true);
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && app.token) {
      for (const tile of app.tiles.values()) if (tile.online) tile.connect();
    }
  });
  el.submit.disabled = false;
  showSignin('');
  initDirectorySignIn({ startSession, setError: setSigninError }); // "Sign in with ..." (oidc.js)
}

init();
