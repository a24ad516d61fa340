// cordon playback service worker: lets a <video> element play recordings
// without ever putting the bearer token in a URL.
//
// A <video src="/api/v1/cameras/ID/recording?start=...&duration=..."> makes
// plain GET requests (with Range) that cannot carry an Authorization header.
// This worker intercepts exactly those requests (same origin, GET, that
// path), asks the page that made them for its token (the page keeps it in
// memory only; this worker stores nothing), and sends the request on with
// "Authorization: Bearer ..." and the original Range/If-Range headers. The
// answer (200 or 206) goes back to the media element untouched. Every other
// request is left alone.

const RECORDING_PATH = /^\/api\/v1\/cameras\/[a-z0-9][a-z0-9_-]{0,63}\/recording$/;
const TOKEN_WAIT_MS = 2000;

// Everything but recording requests bypasses this worker entirely where
// the browser supports static routing (Chromium): the worker is never
// started for them, so nothing else of the page can be delayed or lost by
// it (e.g. the keepalive DELETE of a WHEP session as the page closes).
self.addEventListener('install', (event) => {
  self.skipWaiting();
  if (typeof event.addRoutes !== 'function' || typeof URLPattern !== 'function') return;
  event.waitUntil(event.addRoutes([{
    condition: { not: { urlPattern: new URLPattern({ pathname: '/api/v1/cameras/:camera/recording' }) } },
    source: 'network',
  }]).catch((err) => console.warn('cordon playback worker: no static route', err)));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// askToken asks the page (the client that made the request) for its token.
async function askToken(clientId) {
  if (!clientId) return null;
  const client = await self.clients.get(clientId);
  if (!client) return null;
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(null), TOKEN_WAIT_MS);
    ch.port1.onmessage = (ev) => {
      clearTimeout(timer);
      const t = ev.data && ev.data.token;
      resolve(typeof t === 'string' && t ? t : null);
    };
    client.postMessage({ type: 'cordon-token-request' }, [ch.port2]);
  });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if ((req.method !== 'GET' && req.method !== 'HEAD') || req.mode === 'navigate') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !RECORDING_PATH.test(url.pathname)) return;
  if (req.headers.has('Authorization')) return; // the page's own fetch
  event.respondWith((async () => {
    const token = await askToken(event.clientId || event.resultingClientId);
    const headers = new Headers();
    for (const name of ['Range', 'If-Range', 'Accept']) {
      const v = req.headers.get(name);
      if (v) headers.set(name, v);
    }
    if (token) headers.set('Authorization', 'Bearer ' + token);
    return fetch(url.href, {
      method: req.method,
      headers,
      mode: 'same-origin',
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  })());
});
