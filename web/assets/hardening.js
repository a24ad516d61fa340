// Admin panel: each camera's hardening status (GET /api/v1/admin/hardening),
// shown beside the egress report: the settings that make a camera reach out
// (vendor cloud, UPnP, NTP, DNS...), those not as wanted highlighted, and an
// "Apply" button (POST /api/v1/admin/hardening/{camera}/apply) that sets
// them and reads them back.
//
// Shape (CONTRACT "PTZ and ONVIF"):
//   [{"camera", "vendor", "checked_at", "error"?, "settings":
//     [{"name", "want", "have", "ok", "status"?, "detail"?}]}]
// Parsed defensively: unknown fields ignored, bad entries skipped.
//
// Test hooks: section#hardening-panel; one li.hardening-camera per camera
// with data-camera and data-state ("ok", "drift", "error", "unchecked");
// drifted settings are li.hardening-setting.is-drift; the button is
// button.hardening-apply.

const REFRESH_MS = 15000;

function str(v) {
  return typeof v === 'string' ? v : '';
}

function when(v) {
  if (typeof v !== 'string' || v === '') return null;
  const t = Date.parse(v);
  return Number.isNaN(t) || t <= 0 ? null : new Date(t);
}

// parseHardening turns the report into [{camera, vendor, checkedAt, error,
// settings: [{name, want, have, ok, status, detail}]}].
export function parseHardening(body) {
  const out = [];
  if (!Array.isArray(body)) return out;
  for (const item of body) {
    if (!item || typeof item !== 'object') continue;
    const camera = str(item.camera);
    if (!camera) continue;
    const settings = [];
    for (const s of Array.isArray(item.settings) ? item.settings : []) {
      if (!s || typeof s !== 'object' || !str(s.name)) continue;
      settings.push({
        name: str(s.name), want: str(s.want), have: str(s.have), ok: s.ok === true,
        status: str(s.status), detail: str(s.detail),
      });
    }
    out.push({ camera, vendor: str(item.vendor), checkedAt: when(item.checked_at), error: str(item.error), settings });
  }
  return out;
}

// stateOf: "error" (the camera could not be checked), "drift" (a setting
// is not as wanted), "ok", or "unchecked" (not checked yet).
export function stateOf(entry) {
  if (entry.error) return 'error';
  if (!entry.checkedAt || entry.settings.length === 0) return 'unchecked';
  return entry.settings.every((s) => s.ok) ? 'ok' : 'drift';
}

const STATE_TEXT = {
  ok: 'as wanted',
  drift: 'drifted',
  error: 'cannot be checked',
  unchecked: 'not checked yet',
};

function span(cls, text) {
  const e = document.createElement('span');
  e.className = cls;
  e.textContent = text;
  return e;
}

// HardeningPanel is the admin panel; it places itself after `after` (the
// egress panel). sync(api, nameOf) shows it (api = the viewer's
// authenticated fetch; refreshed at most every 15 s) or, with api null,
// hides it.
export class HardeningPanel {
  constructor(after) {
    this.root = document.createElement('section');
    this.root.className = 'egress-panel hardening-panel';
    this.root.id = 'hardening-panel';
    this.root.hidden = true;
    this.root.setAttribute('aria-labelledby', 'hardening-title');
    const h = document.createElement('h2');
    h.id = 'hardening-title';
    h.append('Camera hardening ', span('egress-note', '(outbound settings, admin only)'));
    this.list = document.createElement('ul');
    this.list.className = 'hardening-list';
    this.root.append(h, this.list);
    after.after(this.root);
    this.api = null;
    this.entries = [];
    this.fetchedAt = 0;
    this.busy = new Set(); // cameras being applied
    this.messages = new Map(); // camera -> last apply outcome
    this.gen = 0;
  }

  async sync(api, nameOf) {
    this.nameOf = nameOf || ((id) => id);
    if (!api) {
      this.hide();
      return;
    }
    this.api = api;
    if (Date.now() - this.fetchedAt >= REFRESH_MS) await this.refresh();
    else this.render();
  }

  hide() {
    this.gen++;
    this.api = null;
    this.entries = [];
    this.fetchedAt = 0;
    this.busy.clear();
    this.messages.clear();
    this.list.replaceChildren();
    this.root.hidden = true;
  }

  async refresh() {
    const gen = this.gen;
    this.fetchedAt = Date.now();
    let res;
    try {
      res = await this.api('/api/v1/admin/hardening');
    } catch {
      return;
    }
    if (gen !== this.gen) return;
    if (res.status !== 200) {
      this.entries = [];
      this.root.hidden = true;
      return;
    }
    try {
      this.entries = parseHardening(await res.json());
    } catch {
      this.entries = [];
    }
    if (gen === this.gen) this.render();
  }

  async apply(camera) {
    if (!this.api || this.busy.has(camera)) return;
    const gen = this.gen;
    this.busy.add(camera);
    this.messages.set(camera, 'applying…');
    this.render();
    let msg;
    try {
      const res = await this.api('/api/v1/admin/hardening/' + encodeURIComponent(camera) + '/apply', { method: 'POST' });
      if (res.status === 200) {
        const [entry] = parseHardening([await res.json()]);
        if (entry && gen === this.gen) {
          this.entries = this.entries.map((e) => (e.camera === camera ? entry : e));
        }
        msg = entry && stateOf(entry) === 'ok' ? 'applied and read back' : 'applied; some settings are still not as wanted';
      } else {
        let body = null;
        try { body = await res.json(); } catch { /* not JSON */ }
        msg = 'apply failed: ' + (body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status);
      }
    } catch {
      msg = 'apply failed: the gateway did not answer';
    }
    if (gen !== this.gen) return;
    this.busy.delete(camera);
    this.messages.set(camera, msg);
    this.render();
  }

  render() {
    this.list.replaceChildren();
    for (const e of this.entries) this.list.append(this.item(e));
    if (this.entries.length === 0) {
      const li = document.createElement('li');
      li.className = 'egress-none';
      li.textContent = 'No camera to check.';
      this.list.append(li);
    }
    this.root.hidden = false;
  }

  item(e) {
    const state = stateOf(e);
    const li = document.createElement('li');
    li.className = 'hardening-camera is-' + state;
    li.dataset.camera = e.camera;
    li.dataset.state = state;
    const name = this.nameOf(e.camera);
    const head = document.createElement('div');
    head.className = 'hardening-head';
    head.append(
      span('egress-camera', name && name !== e.camera ? name + ' (' + e.camera + ')' : e.camera),
      span('hardening-state', STATE_TEXT[state]),
      span('hardening-vendor', e.vendor || 'vendor unknown'),
      span('hardening-when', e.checkedAt ? 'checked ' + e.checkedAt.toLocaleString() : ''),
    );
    if (state === 'drift' || state === 'error') {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn hardening-apply';
      b.textContent = this.busy.has(e.camera) ? 'Applying…' : 'Apply';
      b.disabled = this.busy.has(e.camera);
      b.addEventListener('click', () => this.apply(e.camera));
      head.append(b);
    }
    li.append(head);
    if (this.messages.has(e.camera)) li.append(span('hardening-message', this.messages.get(e.camera)));
    if (e.error) li.append(span('hardening-error', e.error));
    if (e.settings.length) {
      const ul = document.createElement('ul');
      ul.className = 'hardening-settings';
      for (const s of e.settings) {
        const si = document.createElement('li');
        si.className = 'hardening-setting' + (s.ok ? '' : ' is-drift');
        si.append(span('hardening-name', s.name), span('hardening-have', s.have || '?'));
        if (!s.ok) si.append(span('hardening-want', 'want ' + (s.want || '?')));
        if (s.detail && !s.ok) si.title = s.detail;
        ul.append(si);
      }
      li.append(ul);
    }
    return li;
  }
}
