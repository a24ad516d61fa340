// cordon viewer: directory sign-in. Offers "Sign in with <provider>" beside
// the password form when the gateway has OIDC on, completes a sign-in the
// provider sent back, and says plainly when a directory account's groups
// give it no rights. No inline script or style (strict CSP); text set with
// textContent only.
//
// The token hand-off (see api/oidc.go): the callback keeps the session
// token server-side under a one-time code held in an HttpOnly,
// SameSite=Strict cookie scoped to /api/v1/oidc/exchange, and sends the
// browser to "/#signin=oidc" (a marker, no secret). This module removes the
// marker from the address bar and history entry, then POSTs the exchange,
// which answers the token once. The token then lives in app.js's memory
// only, like a password sign-in's.

const MARKER = '#signin=oidc';
const DEFAULT_EMPTY = 'No cameras are available to this account.';

async function getJSON(path, init) {
  const res = await fetch(path, Object.assign({ cache: 'no-store', redirect: 'error' }, init || {}));
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return { status: res.status, body };
}

// sameOriginPath accepts "/path" only (never another origin).
function sameOriginPath(p) {
  return typeof p === 'string' && p.charAt(0) === '/' && p.charAt(1) !== '/' && !p.includes('\\');
}

function sentence(body, status) {
  return body && typeof body.error === 'string' && body.error ? body.error : 'HTTP ' + status;
}

// complete exchanges the hand-off cookie for the session token.
async function complete(hooks) {
  let r;
  try {
    // credentials: the hand-off cookie (same origin only; HttpOnly)
    r = await getJSON('/api/v1/oidc/exchange', { method: 'POST', credentials: 'same-origin' });
  } catch {
    hooks.setError('Single sign-on could not be completed: cannot reach the gateway.');
    return;
  }
  const b = r.body;
  if (r.status !== 200 || !b || typeof b.token !== 'string' || !b.token) {
    hooks.setError('Single sign-on could not be completed: ' + sentence(b, r.status));
    return;
  }
  hooks.startSession(typeof b.user === 'string' ? b.user : '', b.token, b.expires_at);
}

function addButton(oidc) {
  const form = document.getElementById('signin-form');
  if (!form || document.getElementById('signin-oidc')) return;
  const box = document.createElement('div');
  box.className = 'signin-alt';
  const or = document.createElement('p');
  or.className = 'signin-or';
  or.textContent = 'or';
  const a = document.createElement('a');
  a.className = 'btn btn-primary btn-block';
  a.id = 'signin-oidc';
  a.href = oidc.login_url;
  a.textContent = 'Sign in with ' + oidc.name;
  box.append(or, a);
  form.append(box);
}

// initDirectorySignIn: hooks.startSession(user, token, expiresAt) signs the
// page in; hooks.setError(text) shows a sign-in error.
export async function initDirectorySignIn(hooks) {
  if (location.hash === MARKER) {
    history.replaceState(null, '', location.pathname + location.search);
    complete(hooks);
  }
  let r;
  try {
    r = await getJSON('/api/v1/auth/methods', { credentials: 'omit' });
  } catch {
    return;
  }
  const oidc = r.status === 200 && r.body ? r.body.oidc : null;
  if (oidc && typeof oidc.name === 'string' && oidc.name && sameOriginPath(oidc.login_url)) addButton(oidc);
}

// describeAccount asks who the token belongs to and, for a directory
// account whose groups map to no cordon role, replaces the empty-grid text
// with a plain explanation (#empty[data-reason="no-rights"]). current()
// says whether the token is still the page's.
export async function describeAccount(token, current) {
  const empty = document.getElementById('empty');
  if (!empty) return;
  empty.textContent = DEFAULT_EMPTY;
  delete empty.dataset.reason;
  let r;
  try {
    r = await getJSON('/api/v1/me', { credentials: 'omit', headers: { 'Authorization': 'Bearer ' + token } });
  } catch {
    return;
  }
  const me = r.body;
  if (!current() || r.status !== 200 || !me || !Array.isArray(me.roles)) return;
  if ((me.source === 'ldap' || me.source === 'oidc') && me.roles.length === 0) {
    const how = me.source === 'oidc' ? 'single sign-on' : 'your directory account';
    empty.textContent = 'Signed in as ' + me.name + ' (' + how + '), but your groups give you no rights in cordon. ' +
      'Ask your administrator to add you to a group that cordon maps to a role.';
    empty.dataset.reason = 'no-rights';
  }
  const user = document.getElementById('session-user');
  if (user && typeof me.name === 'string' && me.name) user.textContent = me.name;
}
