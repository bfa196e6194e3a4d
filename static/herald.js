// herald.js — browser client for Herald's real-time notifications.
//
// Plain ES module, no dependencies. Include it from any page served by the
// same origin as Herald (the WebSocket uses the session cookie):
//
//   import { HeraldClient } from '/static/herald.js';
//   const herald = new HeraldClient();
//   herald.addEventListener('notification', (e) => console.log(e.detail.notification));
//   herald.addEventListener('statechange', (e) => console.log(e.detail.state));
//   herald.start();
//
// Events (all CustomEvent, payload in `event.detail`):
//   - one event per server message type, named after `type`:
//       `notification`, `global_notification`, `global_notification_removed`
//       (detail.id: an announcement stopped being live), `notification_read`,
//       `notification_unread`, `notification_deleted`, `error`, …
//     detail = the parsed message. Every message is also dispatched as `message`.
//       `sync` ends the server's replay after each connect:
//       detail = { unread_count, replayed, complete }
//   - `statechange`  detail = { state, previous, reason }
//   - `open`         detail = { reconnected, resumed }  (reconnected: a connection
//                    existed before; resumed: the handshake said where to resume,
//                    so what was missed is replayed over the socket)
//   - `refetch`      detail = { reason }  the page should reload its lists over REST:
//                    'incomplete' (more was missed than the server replays) or
//                    'no_resume_point' (a reconnect that could not say where to resume)
//   - `signedout`    detail = { reason }  ('revoked' | 'unauthenticated')
//   - `giveup`       detail = { attempts }  (reconnect attempts exhausted)
//
// States: `connecting` (first connection), `open`, `reconnecting` (waiting for
// or making a reconnect attempt), `closed` (stopped, signed out or gave up).
//
// Reconnection: exponential backoff with jitter, at most `maxAttempts`
// consecutive failed attempts (default 5, as in the seed). The counter resets
// once a connection has stayed open for `healthyAfterMs`. No reconnect after a
// 4001 close (the credential was revoked, e.g. logout elsewhere) or when a
// refused handshake turns out to be a missing sign-in (GET /api/auth/me/ → 401).
// Browsers hide the HTTP status of a refused handshake (the socket just closes
// with 1006 before `open`), hence that check.
//
// Catch-up: the client remembers the newest notification and announcement ids
// it has delivered and sends them on every handshake (`last_id`,
// `last_global_id`, and `sync=1`), so after a reconnect the server replays what
// was created meanwhile, then sends `sync` (the unread count for the badge). A
// notification whose id was already delivered is dropped, and so is an
// announcement delivered before unchanged, so each reaches the page once. A page that loads its lists over REST tells the
// client what it has with `seen({ lastId, lastGlobalId })` (0 for an empty list).
// `resume: false` turns all of this off (the seed's plain stream).

export const STATES = Object.freeze(['connecting', 'open', 'reconnecting', 'closed']);

export const CLOSE_REVOKED = 4001;

const DEFAULTS = {
  url: null, // default: ws(s)://<page host>/ws/notifications/
  path: '/ws/notifications/',
  authCheckUrl: '/api/auth/me/',
  maxAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30000,
  healthyAfterMs: 5000,
  WebSocket: null, // injectable for tests; default globalThis.WebSocket
  fetch: null, // injectable for tests; default globalThis.fetch
  resume: true, // send last_id / last_global_id / sync=1 and drop repeats
  lastId: null, // where to resume, when the page knows it already
  lastGlobalId: null,
};

// Ids remembered per kind to drop repeats (the oldest are forgotten past this).
const REMEMBERED_IDS = 2000;

/** Read a cookie readable by page script (e.g. `csrftoken`). */
export function getCookie(name) {
  const prefix = name + '=';
  for (const part of (typeof document !== 'undefined' ? document.cookie : '').split(';')) {
    const c = part.trim();
    if (c.startsWith(prefix)) return decodeURIComponent(c.slice(prefix.length));
  }
  return null;
}

/** Error thrown by apiFetch for a non-2xx answer; `status` and `body` kept. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * fetch() wrapper for Herald's REST API from a browser page: same-origin
 * cookies, JSON body, and the `X-CSRFToken` header on unsafe methods.
 * Resolves to the parsed JSON body; rejects with ApiError on non-2xx.
 */
export async function apiFetch(path, { method = 'GET', body, headers = {} } = {}) {
  const h = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest', ...headers };
  const init = { method, headers: h, credentials: 'same-origin' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())) {
    const token = getCookie('csrftoken');
    if (token) h['X-CSRFToken'] = token;
  }
  const res = await fetch(path, init);
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export class HeraldClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this._state = 'closed';
    this._socket = null;
    this._attempts = 0; // consecutive failed reconnect attempts
    this._timer = null;
    this._healthyTimer = null;
    this._everOpened = false;
    this._running = false;
    this._generation = 0; // invalidates callbacks of superseded sockets
    this.lastCloseCode = null;
    this.closeReason = null;
    // The newest ids delivered (or declared with `seen`): where a reconnect resumes.
    this.lastId = this.options.lastId;
    this.lastGlobalId = this.options.lastGlobalId;
    // id → what was delivered. An announcement whose text changed (an edit) is delivered again.
    this._delivered = { notification: new Map(), global_notification: new Map() };
  }

  /** Declare what the page already has (e.g. the newest ids of its REST lists). */
  seen({ lastId, lastGlobalId } = {}) {
    if (Number.isInteger(lastId)) this.lastId = Math.max(this.lastId ?? 0, lastId);
    if (Number.isInteger(lastGlobalId)) this.lastGlobalId = Math.max(this.lastGlobalId ?? 0, lastGlobalId);
  }

  /** The handshake URL: the base URL plus where to resume. */
  connectUrl() {
    const base = this.url;
    if (!this.options.resume) return base;
    const params = new URLSearchParams({ sync: '1' });
    if (this.lastId !== null) params.set('last_id', String(this.lastId));
    if (this.lastGlobalId !== null) params.set('last_global_id', String(this.lastGlobalId));
    return base + (base.includes('?') ? '&' : '?') + params;
  }

  /**
   * False for a notification delivered before, or an announcement delivered before unchanged;
   * remembers it otherwise.
   */
  _firstDelivery(data) {
    // A withdrawn announcement may come back (reactivated): it is then news again.
    if (data.type === 'global_notification_removed') this._delivered.global_notification.delete(data.id);
    const ids = this._delivered[data.type];
    const id = data.notification && data.notification.id;
    if (!this.options.resume || !ids || !Number.isInteger(id)) return true;
    const seen = data.type === 'global_notification' ? JSON.stringify(data.notification) : true;
    // An edit (`edited: true`) is sent on purpose under a known id: never a repeat.
    if (!data.edited && ids.has(id) && ids.get(id) === seen) return false;
    ids.delete(id);
    ids.set(id, seen);
    if (ids.size > REMEMBERED_IDS) ids.delete(ids.keys().next().value);
    if (data.type === 'notification') this.lastId = Math.max(this.lastId ?? 0, id);
    else this.lastGlobalId = Math.max(this.lastGlobalId ?? 0, id);
    return true;
  }

  /** Current connection state: connecting | open | reconnecting | closed. */
  get state() {
    return this._state;
  }

  /** Consecutive failed reconnect attempts so far. */
  get attempts() {
    return this._attempts;
  }

  get url() {
    if (this.options.url) return this.options.url;
    const loc = globalThis.location;
    const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${loc.host}${this.options.path}`;
  }

  /** Open the connection (no-op when already running). */
  start() {
    if (this._running) return this;
    this._running = true;
    this._attempts = 0;
    this.closeReason = null;
    this._connect(this._everOpened ? 'reconnecting' : 'connecting');
    return this;
  }

  /** Close for good (e.g. on sign-out). `start()` may be called again later. */
  stop(reason = 'stopped') {
    this._running = false;
    this._clearTimers();
    this._generation++;
    const s = this._socket;
    this._socket = null;
    if (s && (s.readyState === 0 || s.readyState === 1)) {
      try {
        s.close(1000, 'client stopped');
      } catch {
        /* ignore */
      }
    }
    this.closeReason = reason;
    this._setState('closed', reason);
    return this;
  }

  /** Ask the server to mark a notification read. Returns false if not connected. */
  markRead(notificationId) {
    return this.send({ action: 'mark_read', notification_id: Number(notificationId) });
  }

  /** Send a JSON message; returns false when the socket is not open. */
  send(message) {
    const s = this._socket;
    if (!s || s.readyState !== 1) return false;
    s.send(JSON.stringify(message));
    return true;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, reason = null) {
    if (this._state === state) return;
    const previous = this._state;
    this._state = state;
    this._emit('statechange', { state, previous, reason });
  }

  _clearTimers() {
    clearTimeout(this._timer);
    clearTimeout(this._healthyTimer);
    this._timer = null;
    this._healthyTimer = null;
  }

  _connect(state) {
    this._setState(state);
    const WS = this.options.WebSocket || globalThis.WebSocket;
    const gen = ++this._generation;
    let opened = false;
    let openedAt = 0;
    let socket;
    const resumed = this.options.resume && this.lastId !== null && this.lastGlobalId !== null;
    try {
      socket = new WS(this.connectUrl());
    } catch (err) {
      // e.g. a malformed URL: nothing sensible to retry
      this._running = false;
      this.closeReason = 'error';
      this._setState('closed', 'error');
      return;
    }
    this._socket = socket;

    socket.onopen = () => {
      if (gen !== this._generation) return;
      opened = true;
      openedAt = Date.now();
      const reconnected = this._everOpened;
      this._everOpened = true;
      clearTimeout(this._healthyTimer);
      this._healthyTimer = setTimeout(() => {
        if (gen === this._generation) this._attempts = 0;
      }, this.options.healthyAfterMs);
      this._setState('open');
      this._emit('open', { reconnected, resumed });
      if (reconnected && !resumed) this._emit('refetch', { reason: 'no_resume_point' });
    };

    socket.onmessage = (ev) => {
      if (gen !== this._generation) return;
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return; // the server only sends JSON objects
      }
      if (!data || typeof data !== 'object') return;
      if (!this._firstDelivery(data)) return; // already delivered (a replay met a push)
      this._emit('message', data);
      if (typeof data.type === 'string' && data.type && !RESERVED.has(data.type)) {
        this._emit(data.type, data);
      }
      if (data.type === 'sync' && data.complete === false) this._emit('refetch', { reason: 'incomplete' });
    };

    socket.onclose = (ev) => {
      if (gen !== this._generation) return;
      this._socket = null;
      clearTimeout(this._healthyTimer);
      this.lastCloseCode = ev.code;
      if (!this._running) return;
      if (opened && Date.now() - openedAt >= this.options.healthyAfterMs) this._attempts = 0;

      if (ev.code === CLOSE_REVOKED) {
        this._signedOut('revoked');
        return;
      }
      if (!opened) {
        // A refused handshake looks like any network failure from here: ask.
        this._setState('reconnecting');
        this._checkAuth().then((status) => {
          if (gen !== this._generation || !this._running) return;
          if (status === 401 || status === 403) this._signedOut('unauthenticated');
          else this._scheduleReconnect();
        });
        return;
      }
      this._scheduleReconnect();
    };

    socket.onerror = () => {
      /* onclose follows and decides */
    };
  }

  async _checkAuth() {
    const f = this.options.fetch || globalThis.fetch.bind(globalThis);
    try {
      const res = await f(this.options.authCheckUrl, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
        cache: 'no-store',
      });
      return res.status;
    } catch {
      return 0; // network down: the server is away, not our credentials
    }
  }

  _signedOut(reason) {
    this._running = false;
    this._clearTimers();
    this.closeReason = reason;
    this._setState('closed', reason);
    this._emit('signedout', { reason });
  }

  /** Delay before attempt number `n` (1-based): exponential, "equal jitter". */
  backoffDelay(n) {
    const { baseDelayMs, maxDelayMs } = this.options;
    const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1));
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }

  _scheduleReconnect() {
    if (this._attempts >= this.options.maxAttempts) {
      this._running = false;
      this.closeReason = 'gave_up';
      this._setState('closed', 'gave_up');
      this._emit('giveup', { attempts: this._attempts });
      return;
    }
    this._attempts++;
    this._setState('reconnecting');
    clearTimeout(this._timer);
    const gen = this._generation;
    this._timer = setTimeout(() => {
      if (gen !== this._generation || !this._running) return;
      this._connect('reconnecting');
    }, this.backoffDelay(this._attempts));
  }
}

// Event names owned by the client itself; a server message with such a type
// is still available through the generic `message` event.
const RESERVED = new Set(['message', 'statechange', 'open', 'signedout', 'giveup', 'refetch']);

export default HeraldClient;
