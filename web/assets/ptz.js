// PTZ pad of the single view: press-and-hold arrows and zoom (mouse,
// touch, or the keyboard: arrow keys, + and -, Space/Enter on a focused
// button), stop, home and presets, and who holds control until when.
// Commands go to POST /api/v1/cameras/{id}/ptz; the lock's answer (409
// {"error","holder","until"}) is shown, never retried.

import { errorSentence } from './whep.js';

const POLL_MS = 1000;
const REPEAT_MS = 500; // a held move is re-sent this often ...
const MOVE_MS = 1000; // ... each with this timeout: release, or a lost page, stops it
const SPEED = 0.6;
const ZOOM_SPEED = 0.5;

const MOVES = {
  up: { pan: 0, tilt: SPEED, zoom: 0 },
  down: { pan: 0, tilt: -SPEED, zoom: 0 },
  left: { pan: -SPEED, tilt: 0, zoom: 0 },
  right: { pan: SPEED, tilt: 0, zoom: 0 },
  in: { pan: 0, tilt: 0, zoom: ZOOM_SPEED },
  out: { pan: 0, tilt: 0, zoom: -ZOOM_SPEED },
};

// Keys: arrows pan/tilt, + / - zoom (with or without Shift, numpad too).
const KEYS = {
  ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right',
  '+': 'in', '=': 'in', Add: 'in', '-': 'out', '_': 'out', Subtract: 'out',
};

function pad2(n) {
  return String(n).padStart(2, '0');
}

function timeOf(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}

function signed(v) {
  const n = Number(v) || 0;
  return (n >= 0 ? '+' : '') + n.toFixed(2);
}

function typing(target) {
  const t = target && target.tagName;
  return t === 'INPUT' || t === 'SELECT' || t === 'TEXTAREA';
}

export class PTZPad {
  // root: the pad's <aside>; api(path, options) -> Promise<Response> with
  // the bearer token (a 401 signs the page out); user() -> own name.
  constructor(root, api, user) {
    this.root = root;
    this.api = api;
    this.user = user;
    this.holderEl = root.querySelector('#ptz-holder');
    this.alertEl = root.querySelector('#ptz-alert');
    this.positionEl = root.querySelector('#ptz-position');
    this.presetEl = root.querySelector('#ptz-preset');
    this.gotoEl = root.querySelector('#ptz-goto');
    this.camera = null;
    this.held = null; // direction being held
    this.repeat = null;
    this.pollTimer = null;
    this.gen = 0;
    this.presetKey = '';

    for (const b of root.querySelectorAll('[data-ptz]')) this.wireButton(b);
    this.gotoEl.addEventListener('click', () => {
      if (this.presetEl.value) this.send({ preset: this.presetEl.value });
    });
    this.onKeyDown = (ev) => this.keyDown(ev);
    this.onKeyUp = (ev) => this.keyUp(ev);
    this.onBlur = () => this.release();
  }

  wireButton(b) {
    const dir = b.dataset.ptz;
    if (dir === 'stop') {
      b.addEventListener('click', () => this.send({ stop: true }));
      return;
    }
    if (dir === 'home') {
      b.addEventListener('click', () => this.send({ home: true }));
      return;
    }
    b.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      try {
        b.setPointerCapture(ev.pointerId);
      } catch {
        // capture is a nicety: release still comes through pointerup
      }
      this.press(dir, b);
    });
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      b.addEventListener(type, () => {
        if (this.held === dir) this.release();
      });
    }
    // Space/Enter on a focused button hold like a mouse press.
    b.addEventListener('keydown', (ev) => {
      if ((ev.key === ' ' || ev.key === 'Enter') && !ev.repeat) {
        ev.preventDefault();
        ev.stopPropagation();
        this.press(dir, b);
      }
    });
    b.addEventListener('keyup', (ev) => {
      if ((ev.key === ' ' || ev.key === 'Enter') && this.held === dir) {
        ev.preventDefault();
        this.release();
      }
    });
    b.addEventListener('contextmenu', (ev) => ev.preventDefault());
  }

  show(camera) {
    if (this.camera === camera && !this.root.hidden) return;
    this.hide();
    this.camera = camera;
    this.gen++;
    this.presetKey = '';
    this.presetEl.replaceChildren();
    this.setAlert('');
    this.holderEl.textContent = 'Control: checking…';
    this.holderEl.dataset.holder = '';
    this.positionEl.textContent = '';
    this.root.hidden = false;
    document.addEventListener('keydown', this.onKeyDown);
    document.addEventListener('keyup', this.onKeyUp);
    window.addEventListener('blur', this.onBlur);
    this.poll();
  }

  hide() {
    if (this.camera && this.held) this.release();
    this.gen++;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
    document.removeEventListener('keydown', this.onKeyDown);
    document.removeEventListener('keyup', this.onKeyUp);
    window.removeEventListener('blur', this.onBlur);
    this.root.hidden = true;
    this.camera = null;
  }

  keyDown(ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev.target)) return;
    let dir = KEYS[ev.key];
    if (!dir && (ev.key === 'h' || ev.key === 'H')) {
      if (!ev.repeat) this.send({ home: true });
      ev.preventDefault();
      return;
    }
    if (!dir) return;
    ev.preventDefault();
    if (ev.repeat || this.held === dir) return;
    this.press(dir, this.root.querySelector('[data-ptz="' + dir + '"]'));
  }

  keyUp(ev) {
    const dir = KEYS[ev.key];
    if (dir && this.held === dir) {
      ev.preventDefault();
      this.release();
    }
  }

  // press starts a held move: sent now and every REPEAT_MS until release.
  press(dir, button) {
    if (!MOVES[dir]) return;
    if (this.held) this.release(true);
    this.held = dir;
    this.heldButton = button || null;
    if (this.heldButton) this.heldButton.classList.add('is-held');
    const cmd = { move: MOVES[dir], timeout_ms: MOVE_MS };
    this.send(cmd);
    this.repeat = setInterval(() => this.send(cmd), REPEAT_MS);
  }

  // release ends a held move with a stop (unless another press follows).
  release(silent) {
    if (!this.held) return;
    clearInterval(this.repeat);
    this.repeat = null;
    if (this.heldButton) this.heldButton.classList.remove('is-held');
    this.held = null;
    this.heldButton = null;
    if (!silent) this.send({ stop: true });
  }

  setAlert(text) {
    this.alertEl.textContent = text;
    this.alertEl.hidden = !text;
  }

  async send(cmd) {
    const camera = this.camera;
    const gen = this.gen;
    if (!camera) return;
    let res;
    try {
      res = await this.api('/api/v1/cameras/' + encodeURIComponent(camera) + '/ptz', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(cmd),
      });
    } catch {
      return; // signed out, or the gateway is away: the camera stops by itself
    }
    if (gen !== this.gen) return;
    if (res.status === 204) {
      this.setAlert('');
      this.poll();
      return;
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (gen !== this.gen) return;
    const msg = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status;
    switch (res.status) {
      case 409:
        this.release(true);
        if (body && body.holder) {
          this.showHolder(String(body.holder), body.until);
          this.setAlert(String(body.holder) + ' has control until ' + timeOf(body.until) +
            ' (same or higher priority): you cannot steer now');
        } else {
          this.setAlert(msg);
        }
        return;
      case 429:
        return; // too fast: the next repeat goes through
      case 403:
        this.release(true);
        this.setAlert('You may not steer this camera.');
        return;
      default:
        if (res.status >= 400) this.setAlert('PTZ: ' + msg);
    }
  }

  showHolder(name, until) {
    const me = this.user();
    this.holderEl.dataset.holder = name || '';
    if (!name) {
      this.holderEl.textContent = 'Control: free';
    } else if (name === me) {
      this.holderEl.textContent = 'You have control until ' + timeOf(until);
    } else {
      this.holderEl.textContent = name + ' has control until ' + timeOf(until);
    }
  }

  async poll() {
    clearTimeout(this.pollTimer);
    const camera = this.camera;
    const gen = this.gen;
    if (!camera) return;
    let st = null;
    try {
      const res = await this.api('/api/v1/cameras/' + encodeURIComponent(camera) + '/ptz');
      if (res.status === 200) {
        st = await res.json();
      } else if (gen === this.gen) {
        this.setAlert('PTZ unavailable: ' + ((await errorSentence(res)) || 'HTTP ' + res.status));
      }
    } catch {
      st = null;
    }
    if (gen !== this.gen) return;
    if (st) this.render(st);
    this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
  }

  render(st) {
    this.showHolder(typeof st.holder === 'string' ? st.holder : '', st.until);
    const pos = st.status && st.status.position;
    this.positionEl.textContent = pos ?
      'Pan ' + signed(pos.pan) + ' · Tilt ' + signed(pos.tilt) + ' · Zoom ' + (Number(pos.zoom) || 0).toFixed(2) +
        (st.status.moving ? ' · moving' : '') : '';
    const caps = st.capabilities || {};
    for (const b of this.root.querySelectorAll('[data-ptz="in"], [data-ptz="out"]')) b.disabled = caps.zoom === false;
    this.root.querySelector('[data-ptz="home"]').disabled = caps.home === false;
    const presets = Array.isArray(st.presets) ? st.presets : [];
    const key = presets.map((p) => p && p.token).join('\n');
    if (key !== this.presetKey) {
      this.presetKey = key;
      const opts = [];
      for (const p of presets) {
        if (!p || typeof p.token !== 'string') continue;
        const o = document.createElement('option');
        o.value = p.token;
        o.textContent = (typeof p.name === 'string' && p.name) ? p.name : p.token;
        opts.push(o);
      }
      this.presetEl.replaceChildren(...opts);
    }
    const none = this.presetEl.options.length === 0;
    this.presetEl.disabled = none;
    this.gotoEl.disabled = none;
    const errAt = st.last_error_at ? Date.parse(st.last_error_at) : NaN;
    if (st.last_error && !this.alertEl.textContent && Date.now() - errAt < 30000) {
      this.setAlert('Camera: ' + st.last_error);
    }
  }
}
