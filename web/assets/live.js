// A camera's live picture in one <video>: a WHEP session (whep.js),
// restarted with backoff (1 s doubling to 15 s) when the media path breaks
// and by a watchdog when no frame arrives. The grid's tiles (app.js) and
// the single view (single.js) each own one LivePlayer; what the states
// look like and what a refused start means is theirs (the hooks).

import { WhepSession } from './whep.js';

export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 15000;
const PLAY_TIMEOUT_MS = 20000; // answer received but no frame: reconnect

// retryAfterMs is a 503's Retry-After (seconds) as a retry delay (1 to 60
// s), or null when the gateway gave none.
export function retryAfterMs(seconds) {
  return seconds && seconds > 0 ? Math.min(Math.max(seconds * 1000, BACKOFF_MIN_MS), 60000) : null;
}

// autoplayMuted makes video play muted, inline, without a user gesture
// (allowed when muted); the IDL attributes are set too (a cloned template
// does not always carry them over).
export function autoplayMuted(video) {
  video.muted = true;
  video.defaultMuted = true;
  video.autoplay = true;
  video.playsInline = true;
}

// LivePlayer hooks (all but watch required):
//   target()           {url, token, current()} to play now, or null (nothing
//                      to play); current() says whether the owner still
//                      wants this attempt (same sign-in, same camera)
//   connecting()       an attempt starts
//   playing()          the video has a frame
//   isPlaying()        whether the owner shows "playing" (the watchdog asks)
//   reconnecting(text) the media path broke; text ends "· retry in N s"
//   failed(err)        the WHEP start failed (a WhepError, or the browser's)
//   watch(session, current) more listeners on each new session
export class LivePlayer {
  constructor(video, hooks) {
    this.video = video;
    this.hooks = hooks;
    this.session = null;
    this.attempt = 0;
    this.backoff = BACKOFF_MIN_MS;
    this.timers = new Map(); // name -> timeout; teardown clears them all
    autoplayMuted(video);
    video.addEventListener('playing', () => {
      if (!this.live()) return;
      this.clear('watchdog');
      this.backoff = BACKOFF_MIN_MS;
      hooks.playing();
    });
  }

  // live: a session that has not been closed.
  live() {
    return this.session !== null && !this.session.closed;
  }

  // later runs fn after ms unless cleared (by name, or by teardown).
  later(name, ms, fn) {
    this.clear(name);
    this.timers.set(name, setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, ms));
  }

  clear(name) {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  pending(name) {
    return this.timers.has(name);
  }

  // teardown closes the peer connection and DELETEs the WHEP session.
  teardown(keepalive) {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    const s = this.session;
    this.session = null;
    this.video.srcObject = null;
    return s ? s.close(keepalive) : Promise.resolve();
  }

  schedule(ms) {
    this.later('retry', ms, () => this.connect());
  }

  nextBackoff() {
    const ms = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    return ms;
  }

  // retry: the media path broke; reconnect after the next backoff.
  retry(reason) {
    this.teardown(false);
    const ms = this.nextBackoff();
    this.hooks.reconnecting(reason + ' · retry in ' + Math.round(ms / 1000) + ' s');
    this.schedule(ms);
  }

  async connect() {
    this.teardown(false);
    const target = this.hooks.target();
    if (!target) return;
    const attempt = ++this.attempt;
    this.hooks.connecting();
    const session = new WhepSession(target.url, target.token);
    this.session = session;
    const current = () => this.session === session && this.attempt === attempt && target.current();
    session.addEventListener('ended', () => {
      if (current()) this.retry('track ended');
    });
    session.addEventListener('state', (ev) => {
      if (!current()) return;
      const { connection, ice } = ev.detail;
      // 'closed' here comes from the far end (our own close emits nothing).
      if (connection === 'failed' || ice === 'failed' || connection === 'closed' || ice === 'closed') this.retry('connection failed');
    });
    if (this.hooks.watch) this.hooks.watch(session, current);
    try {
      await session.start();
    } catch (err) {
      if (!current()) return;
      this.session = null;
      session.close(false);
      this.hooks.failed(err);
      return;
    }
    if (!current()) return;
    this.video.srcObject = session.stream;
    const p = this.video.play();
    if (p) p.catch(() => {}); // 'playing' drives the state
    this.later('watchdog', PLAY_TIMEOUT_MS, () => {
      if (current() && !this.hooks.isPlaying()) this.retry('no video received');
    });
  }

  // framesDecoded reads the session's decoded video frames (0 without one),
  // for the test hooks.
  async framesDecoded() {
    if (!this.session) return 0;
    try {
      return (await this.session.stats()).framesDecoded;
    } catch {
      return 0;
    }
  }
}
