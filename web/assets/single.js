// Single-camera view: one camera large, its main stream (the grid plays
// sub streams), the PTZ pad when the user may steer it, and an empty
// container for the recording timeline and export (issue 16).
//
// Switching from the grid keeps the tile's picture (the sub stream's
// MediaStream, shown in a second <video>) until the main stream has
// decoded a frame, so there is no black frame in between. A main stream
// with B-frames (WHEP 422) falls back to the sub stream when there is one.
//
// Hook for other modules (see web/README.md "Single view hook"):
//   document 'cordon:single-open'   detail {camera, name, rights, container, api}
//   document 'cordon:single-update' detail {camera, name, rights, container, api} (rights or name changed)
//   document 'cordon:single-close'  detail {camera}
// `container` is #single-recordings; `api(path, options)` is fetch with the
// user's bearer token (a 401 signs the page out). The token itself is
// never handed out.

import { WhepError } from './whep.js';
import { LivePlayer, autoplayMuted, retryAfterMs } from './live.js';
import { PTZPad } from './ptz.js';

const $ = (id) => document.getElementById(id);

function sameRights(a, b) {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

export class SingleView {
  // opts: {api, token(), user(), signedOut(message), onClose()}
  constructor(opts) {
    this.opts = opts;
    this.root = $('single');
    this.title = $('single-title');
    this.streamEl = $('single-stream');
    this.badge = $('single-badge');
    this.video = $('single-video');
    this.preview = $('single-preview');
    this.message = $('single-message');
    this.container = $('single-recordings');
    this.ptz = new PTZPad($('ptz-pad'), opts.api, opts.user);
    autoplayMuted(this.preview);
    this.cam = null;
    this.stream = ''; // '' = main, 'sub'
    this.note = '';
    this.rights = [];
    this.player = new LivePlayer(this.video, {
      target: () => {
        const cam = this.cam;
        const token = this.opts.token();
        if (!cam || !token) return null;
        const url = '/whep/' + encodeURIComponent(cam.id) + (this.stream === 'sub' ? '?stream=sub' : '');
        return { url, token, current: () => this.cam === cam };
      },
      connecting: () => this.setState('connecting'),
      // the live picture has a frame: the preview goes
      playing: () => {
        this.dropPreview();
        this.setState('playing');
      },
      isPlaying: () => this.root.dataset.state === 'playing',
      reconnecting: (text) => this.setState('reconnecting', text),
      failed: (err) => this.startFailed(err),
    });

    $('single-back').addEventListener('click', () => this.close());
    $('single-fullscreen').addEventListener('click', () => {
      const media = $('single-media');
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else if (media.requestFullscreen) media.requestFullscreen().catch(() => {});
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.isOpen() && !document.fullscreenElement) {
        ev.preventDefault();
        this.close();
      }
    });
  }

  isOpen() {
    return this.cam !== null;
  }

  // open shows cam (an entry of GET /api/v1/cameras); previewStream is the
  // grid tile's MediaStream, shown until the main stream plays.
  open(cam, previewStream) {
    if (this.cam) this.close(true);
    this.cam = cam;
    this.rights = Array.isArray(cam.rights) ? cam.rights.slice() : [];
    this.root.dataset.camera = cam.id;
    this.container.dataset.camera = cam.id;
    this.title.textContent = cam.name || cam.id;
    this.root.hidden = false;
    if (previewStream && previewStream.getVideoTracks().some((t) => t.readyState === 'live')) {
      this.preview.srcObject = previewStream;
      const p = this.preview.play();
      if (p) p.catch(() => {});
      this.root.classList.add('has-preview');
    }
    // the main stream, unless it is known to have B-frames and a sub stream exists
    this.note = '';
    this.stream = cam.b_frames && cam.sub_stream ? 'sub' : '';
    if (this.stream) this.note = 'main stream has B-frames';
    this.showPTZ();
    this.player.connect();
    $('single-back').focus();
    document.dispatchEvent(new CustomEvent('cordon:single-open', { detail: this.detail() }));
  }

  detail() {
    return { camera: this.cam.id, name: this.cam.name || this.cam.id, rights: this.rights.slice(), container: this.container, api: this.opts.api };
  }

  // update applies a fresh camera-list entry of the open camera.
  update(cam) {
    if (!this.cam || cam.id !== this.cam.id) return;
    const rights = Array.isArray(cam.rights) ? cam.rights.slice() : [];
    const changed = !sameRights(rights, this.rights) || (cam.name || cam.id) !== (this.cam.name || this.cam.id);
    this.cam = cam;
    this.rights = rights;
    this.title.textContent = cam.name || cam.id;
    this.showPTZ();
    if (changed) document.dispatchEvent(new CustomEvent('cordon:single-update', { detail: this.detail() }));
  }

  showPTZ() {
    if (this.cam && this.cam.ptz && this.rights.includes('ptz')) this.ptz.show(this.cam.id);
    else this.ptz.hide();
  }

  // close goes back to the grid.
  close(quiet) {
    if (!this.cam) return;
    const id = this.cam.id;
    this.ptz.hide();
    this.player.teardown(false);
    this.dropPreview();
    this.cam = null;
    this.root.hidden = true;
    this.root.dataset.camera = '';
    this.container.dataset.camera = '';
    this.setState('closed');
    document.dispatchEvent(new CustomEvent('cordon:single-close', { detail: { camera: id } }));
    if (!quiet && this.opts.onClose) this.opts.onClose(id);
  }

  dropPreview() {
    this.root.classList.remove('has-preview');
    this.preview.srcObject = null; // the tile keeps its own stream
  }

  setState(state, text) {
    this.root.dataset.state = state;
    this.root.dataset.stream = this.stream === 'sub' ? 'sub' : 'main';
    this.badge.textContent = state === 'closed' ? '' : state;
    this.streamEl.textContent = this.stream === 'sub' ? 'sub stream' + (this.note ? ' (' + this.note + ')' : '') : 'main stream';
    this.message.textContent = state === 'playing' ? '' : (text || '');
  }

  startFailed(err) {
    const status = err instanceof WhepError ? err.status : -1;
    const text = err instanceof WhepError ? err.message : 'browser could not start WebRTC';
    switch (status) {
      case 401:
        this.opts.signedOut('Your session has ended. Sign in again.');
        return;
      case 403:
        this.setState('forbidden', 'not permitted');
        return;
      case 422:
        if (this.stream === '' && this.cam.sub_stream) {
          // B-frames on the main stream: the sub stream instead
          this.stream = 'sub';
          this.note = 'main stream has B-frames';
          this.player.connect();
          return;
        }
        this.setState('unsupported', text);
        return;
      case 503: {
        this.setState('offline', 'camera offline');
        this.player.schedule(retryAfterMs(err.retryAfter) ?? this.player.backoff);
        return;
      }
      case 400:
      case 404:
        this.setState('error', text);
        return;
      default:
        this.player.retry(status === 0 ? 'gateway unreachable' : text);
    }
  }

  // stats is the test hook's view of the single view.
  async stats() {
    return {
      camera: this.cam ? this.cam.id : '',
      stream: this.root.dataset.stream || 'main',
      state: this.root.dataset.state,
      framesDecoded: await this.player.framesDecoded(),
      width: this.video.videoWidth,
      height: this.video.videoHeight,
      preview: this.root.classList.contains('has-preview'),
    };
  }
}

