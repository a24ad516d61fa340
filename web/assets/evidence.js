// cordon evidence export: the form that asks for a span and a reason,
// builds an export (POST /api/v1/exports) and downloads its ZIP with the
// page's token; and the export key line shown to administrators.

import { errorSentence } from './whep.js';
import { bothZones, iso, node, button } from './recutil.js';

const MAX_REASON = 1000;

// ExportForm is one camera's export form. at() tells what the widget
// shows: {mode: 'live' | 'playback', t: ms}.
export class ExportForm {
  constructor(camera, api, at) {
    this.camera = camera;
    this.api = api;
    this.at = at;
    this.lastExport = null;
    this.form = node('form', 'rec-export');
    this.form.hidden = true;
    this.form.noValidate = true;
    const from = node('label', 'rec-field');
    from.append(node('span', '', 'From (UTC)'));
    this.fromIn = node('input', 'rec-from');
    this.fromIn.type = 'text';
    this.fromIn.spellcheck = false;
    from.append(this.fromIn);
    const to = node('label', 'rec-field');
    to.append(node('span', '', 'To (UTC)'));
    this.toIn = node('input', 'rec-to');
    this.toIn.type = 'text';
    this.toIn.spellcheck = false;
    to.append(this.toIn);
    const why = node('label', 'rec-field rec-field-wide');
    why.append(node('span', '', 'Reason (incident, reference; recorded in the audit log and the manifest)'));
    this.reasonIn = node('textarea', 'rec-reason');
    this.reasonIn.rows = 2;
    this.reasonIn.maxLength = MAX_REASON;
    this.reasonIn.required = true;
    why.append(this.reasonIn);
    const actions = node('div', 'rec-actions');
    this.createBtn = node('button', 'btn btn-primary rec-create', 'Create export');
    this.createBtn.type = 'submit';
    this.cancelBtn = button('btn-ghost rec-cancel', 'Cancel');
    actions.append(this.createBtn, this.cancelBtn);
    this.exportMsg = node('p', 'rec-export-msg');
    this.exportMsg.setAttribute('role', 'status');
    this.downloadBtn = button('rec-download', 'Download ZIP');
    this.downloadBtn.hidden = true;
    this.form.append(from, to, why, actions, this.exportMsg, this.downloadBtn);

    this.cancelBtn.addEventListener('click', () => { this.form.hidden = true; });
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.create();
    });
    this.downloadBtn.addEventListener('click', () => this.download());
  }

  open() {
    const { mode, t: at } = this.at();
    const from = mode === 'playback' ? at - 30000 : Date.now() - 120000;
    this.fromIn.value = iso(Math.floor(from / 1000) * 1000);
    this.toIn.value = iso(Math.ceil((mode === 'playback' ? at + 30000 : Date.now()) / 1000) * 1000);
    this.exportMsg.textContent = '';
    this.downloadBtn.hidden = true;
    this.form.hidden = false;
    this.reasonIn.focus();
  }

  async create() {
    const start = Date.parse(this.fromIn.value.trim());
    const end = Date.parse(this.toIn.value.trim());
    const reason = this.reasonIn.value.trim();
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      this.exportMsg.textContent = 'Enter UTC times such as 2026-11-30T14:02:00Z, the end after the start.';
      return;
    }
    if (!reason) {
      this.exportMsg.textContent = 'A reason is required: it goes into the audit log and the signed manifest.';
      return;
    }
    this.createBtn.disabled = true;
    this.exportMsg.textContent = 'Building the export (the recorded bytes are checked first)…';
    let res;
    try {
      res = await this.api('/api/v1/exports', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ camera: this.camera, start: iso(start), end: iso(end), reason }),
      });
    } catch {
      this.createBtn.disabled = false;
      return;
    }
    this.createBtn.disabled = false;
    let body = null;
    if (res.status === 201) body = await res.json().catch(() => null);
    if (!body || typeof body.id !== 'string' || typeof body.url !== 'string' || !body.url.startsWith('/api/v1/exports/')) {
      const why = res.status === 201 ? 'unreadable answer' : ((await errorSentence(res)) || 'HTTP ' + res.status);
      this.lastExport = { status: res.status, error: why };
      this.exportMsg.textContent = 'Export refused: ' + why;
      return;
    }
    this.lastExport = { status: 201, id: body.id, url: body.url };
    this.reasonIn.value = '';
    this.exportMsg.textContent = 'Export ' + body.id + ' is ready (' + bothZones(start) + ' to ' + bothZones(end) +
      '). Verify it with: cordon export verify FILE';
    this.downloadBtn.hidden = false;
  }

  async download() {
    const e = this.lastExport;
    if (!e || !e.url) return;
    this.downloadBtn.disabled = true;
    try {
      const res = await this.api(e.url);
      if (res.status !== 200) {
        this.exportMsg.textContent = 'Download refused: ' + ((await errorSentence(res)) || 'HTTP ' + res.status);
        return;
      }
      const blob = await res.blob();
      e.bytes = blob.size;
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'cordon-export-' + this.camera + '-' + e.id + '.zip';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch {
      // signed out or unreachable: the host page says so
    } finally {
      this.downloadBtn.disabled = false;
    }
  }

}

// exportKeyText returns the line administrators see about the evidence
// export key ("" when recording is off or the caller is no administrator).
export async function exportKeyText(api) {
  let res;
  try {
    res = await api('/api/v1/admin/recording');
  } catch {
    return '';
  }
  if (res.status !== 200) return '';
  const body = await res.json().catch(() => null);
  const fp = body && body.export_key && body.export_key.fingerprint;
  if (typeof fp !== 'string' || !fp) return '';
  return 'Evidence export signing key: ' + fp + ' (give it to whoever verifies exports: cordon export verify FILE --pubkey)';
}
