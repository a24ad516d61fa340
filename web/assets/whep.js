// WHEP client (draft-ietf-wish-whep): one receive-only RTCPeerConnection per
// camera. POST offer -> 201 + Location + answer; DELETE Location to end.
// The bearer token travels only in the Authorization header, never in a URL.

const ICE_GATHER_TIMEOUT_MS = 2000;

// WhepError carries the HTTP status of a failed WHEP request.
export class WhepError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.name = 'WhepError';
    this.status = status; // 0 = network error
    this.retryAfter = retryAfter; // seconds, or null
  }
}

// retryAfterSeconds parses a Retry-After header (delta-seconds or HTTP date).
export function retryAfterSeconds(value) {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return parseInt(v, 10);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, Math.round((t - Date.now()) / 1000));
}

// errorSentence reads the contract's {"error": "..."} body, if any.
export async function errorSentence(res) {
  try {
    const ct = res.headers.get('Content-Type') || '';
    if (!ct.includes('json')) return '';
    const body = await res.json();
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: no sentence
  }
  return '';
}

function waitIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// sameOriginURL resolves a Location header against the endpoint and refuses
// anything pointing off this origin (CSP would refuse it anyway).
function sameOriginURL(location, base) {
  try {
    const u = new URL(location, base);
    if (u.origin !== window.location.origin) return null;
    return u.href;
  } catch {
    return null;
  }
}

// WhepSession is one viewing session. Events (EventTarget):
//   'track'  detail: MediaStreamTrack — a remote track arrived
//   'state'  detail: RTCPeerConnection.connectionState / iceConnectionState
//   'ended'  detail: MediaStreamTrack — a remote track ended
export class WhepSession extends EventTarget {
  constructor(endpoint, token) {
    super();
    this.endpoint = new URL(endpoint, window.location.href).href;
    this.token = token; // captured: DELETEs after sign-out still carry it
    this.pc = null;
    this.stream = new MediaStream();
    this.resource = null; // absolute URL of the session (Location)
    this.closed = false;
  }

  async start() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addEventListener('track', (ev) => {
      const track = ev.track;
      this.stream.addTrack(track);
      track.addEventListener('ended', () => {
        if (!this.closed) this.dispatchEvent(new CustomEvent('ended', { detail: track }));
      });
      this.dispatchEvent(new CustomEvent('track', { detail: track }));
    });
    const emit = () => {
      if (this.closed) return;
      this.dispatchEvent(new CustomEvent('state', {
        detail: { connection: pc.connectionState, ice: pc.iceConnectionState },
      }));
    };
    pc.addEventListener('connectionstatechange', emit);
    pc.addEventListener('iceconnectionstatechange', emit);

    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitIceGathering(pc, ICE_GATHER_TIMEOUT_MS);
    if (this.closed) throw new WhepError(0, 'closed', null);

    let res;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/sdp',
          'Authorization': 'Bearer ' + this.token,
        },
        body: pc.localDescription.sdp,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (err) {
      throw new WhepError(0, this.closed ? 'closed' : 'gateway unreachable', null);
    }
    if (res.status !== 201) {
      const msg = await errorSentence(res);
      throw new WhepError(res.status, msg || ('HTTP ' + res.status),
        retryAfterSeconds(res.headers.get('Retry-After')));
    }
    const loc = res.headers.get('Location');
    this.resource = loc ? sameOriginURL(loc, this.endpoint) : null;
    const answer = await res.text();
    if (this.closed) {
      // Torn down while the POST was in flight: end the server's session.
      this.deleteResource(false);
      throw new WhepError(0, 'closed', null);
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  }

  // deleteResource ends the session on the gateway. keepalive lets the
  // request outlive the page (pagehide).
  deleteResource(keepalive) {
    const url = this.resource;
    this.resource = null;
    if (!url) return Promise.resolve();
    const headers = this.token ? { 'Authorization': 'Bearer ' + this.token } : {};
    return fetch(url, {
      method: 'DELETE',
      headers,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      keepalive: !!keepalive,
    }).then(() => undefined, () => undefined);
  }

  // close tears the peer connection down and DELETEs the session. Returns a
  // promise that settles when the DELETE has been answered (or failed).
  close(keepalive) {
    if (this.closed) return Promise.resolve();
    // An offer still in flight is not aborted: start() sees `closed` once
    // the answer arrives and DELETEs the session it created.
    this.closed = true;
    for (const t of this.stream.getTracks()) t.stop();
    if (this.pc) this.pc.close();
    return this.deleteResource(keepalive);
  }

  // stats returns the inbound video counters, for the test hook.
  async stats() {
    const out = { framesDecoded: 0, bytesReceived: 0 };
    if (!this.pc || this.pc.connectionState === 'closed') return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.framesDecoded += s.framesDecoded || 0;
        out.bytesReceived += s.bytesReceived || 0;
      }
    });
    return out;
  }
}
