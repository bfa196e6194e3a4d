// herald.js on its own, in the browser, with a scripted WebSocket: events for every
// message type, markRead, states, backoff with jitter, bounded retries, no retry after 4001/401.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, screenshot } from './harness.mjs';

const fx = fixture();
before(fx.launch);
after(fx.close);
beforeEach(fx.setup);
afterEach(fx.teardown);

// Runs in the page: a fake WebSocket the test drives by hand.
function installFakes() {
  class FakeWS {
    static instances = [];
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      FakeWS.instances.push(this);
      // A refused handshake looks like this to page JS: closed with 1006 before open.
      if (FakeWS.refuse) setTimeout(() => this.serverClose(1006), 1);
    }
    send(data) {
      this.sent.push(data);
    }
    close(code = 1000) {
      this.readyState = 3;
      queueMicrotask(() => this.onclose && this.onclose({ code }));
    }
    serverOpen() {
      this.readyState = 1;
      this.onopen && this.onopen({});
    }
    serverSend(obj) {
      this.onmessage && this.onmessage({ data: JSON.stringify(obj) });
    }
    serverClose(code) {
      this.readyState = 3;
      this.onclose && this.onclose({ code });
    }
  }
  window.FakeWS = FakeWS;
  window.authStatus = 200;
  window.authChecks = 0;
  window.fakeFetch = async () => {
    window.authChecks++;
    return { status: window.authStatus };
  };
  window.tick = (ms) => new Promise((r) => setTimeout(r, ms));
  window.until = async (fn, ms = 3000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (fn()) return true;
      await window.tick(5);
    }
    throw new Error('until: timed out on ' + fn);
  };
}

test('herald.js: events, markRead, states, backoff, bounded retries, no retry after 4001 or 401', async () => {
  const ctx = await fx.context();
  const page = await ctx.newPage();
  await page.goto(fx.server.url('/'));
  await page.evaluate(installFakes);

  const result = await page.evaluate(async () => {
    const { HeraldClient } = await import('/static/herald.js');
    const out = {};
    const mk = (opts = {}) =>
      new HeraldClient({ WebSocket: FakeWS, fetch: fakeFetch, baseDelayMs: 20, maxDelayMs: 80, healthyAfterMs: 100, ...opts });

    // --- URL, states and events
    const c = mk();
    const states = [];
    const events = [];
    c.addEventListener('statechange', (e) => states.push(e.detail.state));
    for (const t of ['notification', 'global_notification', 'notification_read', 'error', 'something_new', 'message', 'open']) {
      c.addEventListener(t, (e) => events.push([t, e.detail && (e.detail.type || e.detail.reconnected)]));
    }
    c.start();
    const ws1 = FakeWS.instances.at(-1);
    out.url = ws1.url;
    out.stateBeforeOpen = c.state;
    ws1.serverOpen();
    ws1.serverSend({ type: 'notification', notification: { id: 7 } });
    ws1.serverSend({ type: 'global_notification', notification: { id: 8 } });
    ws1.serverSend({ type: 'notification_read', notification_ids: [7], unread_count: 0 });
    ws1.serverSend({ type: 'error', error: 'nope' });
    ws1.serverSend({ type: 'something_new', x: 1 });
    out.events = events.slice();
    out.markRead = c.markRead(7);
    out.sent = ws1.sent.map((s) => JSON.parse(s));

    // --- a drop while open → reconnecting → new socket → open({reconnected:true})
    ws1.serverClose(1001);
    out.stateAfterDrop = c.state;
    out.markReadWhileDown = c.markRead(7);
    await until(() => FakeWS.instances.length === 2);
    FakeWS.instances.at(-1).serverOpen();
    out.reopened = events.filter((e) => e[0] === 'open').map((e) => e[1]);
    out.states = states.slice();

    // --- 4001: signed out, never reconnects
    let signedOut = null;
    c.addEventListener('signedout', (e) => (signedOut = e.detail.reason));
    const before4001 = FakeWS.instances.length;
    FakeWS.instances.at(-1).serverClose(4001);
    await tick(300);
    out.after4001 = { state: c.state, signedOut, newSockets: FakeWS.instances.length - before4001 };

    // --- refused handshakes while the server is away: bounded attempts, then give up
    const g = mk({ maxAttempts: 4 });
    let gaveUp = null;
    g.addEventListener('giveup', (e) => (gaveUp = e.detail.attempts));
    const startG = FakeWS.instances.length;
    window.authStatus = 0; // /api/auth/me/ unreachable: not a sign-out
    window.authChecks = 0;
    FakeWS.refuse = true;
    g.start();
    await until(() => gaveUp !== null, 5000);
    await tick(300);
    out.giveUp = { attempts: gaveUp, sockets: FakeWS.instances.length - startG, state: g.state, closeReason: g.closeReason, authChecks: window.authChecks };

    // --- refused handshake + /api/auth/me/ 401: stop at once
    const r = mk();
    let rSigned = null;
    r.addEventListener('signedout', (e) => (rSigned = e.detail.reason));
    window.authStatus = 401;
    const startR = FakeWS.instances.length;
    r.start();
    await until(() => rSigned !== null);
    await tick(300);
    out.refused = { reason: rSigned, sockets: FakeWS.instances.length - startR, state: r.state };

    // --- the attempts counter resets after a healthy connection
    window.authStatus = 200;
    FakeWS.refuse = false;
    const h = mk({ maxAttempts: 2 });
    h.start();
    const startH = FakeWS.instances.length - 1;
    FakeWS.instances.at(-1).serverClose(1006); // attempt 1 fails
    await until(() => FakeWS.instances.length === startH + 2);
    FakeWS.instances.at(-1).serverOpen();
    await tick(150); // > healthyAfterMs
    out.attemptsAfterHealthy = h.attempts;
    FakeWS.instances.at(-1).serverClose(1008); // slow consumer: reconnect with backoff
    await until(() => FakeWS.instances.length === startH + 3);
    out.stateAfter1008 = h.state;
    h.stop();
    out.stoppedState = h.state;

    // --- catch-up: resume from the newest ids delivered, drop repeats, refetch when incomplete
    const k = mk();
    const got = [];
    const refetches = [];
    k.addEventListener('notification', (e) => got.push(['n', e.detail.notification.id]));
    k.addEventListener('global_notification', (e) => got.push(['g', e.detail.notification.id]));
    k.addEventListener('sync', (e) => got.push(['sync', e.detail.unread_count]));
    k.addEventListener('refetch', (e) => refetches.push(e.detail.reason));
    k.start();
    const k1 = FakeWS.instances.at(-1);
    out.firstUrl = k1.url;
    k1.serverOpen();
    k.seen({ lastId: 3, lastGlobalId: 0 }); // what the page fetched over REST
    k1.serverSend({ type: 'sync', unread_count: 1, replayed: 0, complete: true });
    k1.serverSend({ type: 'notification', notification: { id: 5 } });
    k1.serverSend({ type: 'global_notification', notification: { id: 2 } });
    k1.serverClose(1006);
    await until(() => FakeWS.instances.at(-1) !== k1);
    const k2 = FakeWS.instances.at(-1);
    out.resumeUrl = k2.url;
    k2.serverOpen();
    // The replay meets a push the client already had: delivered once.
    k2.serverSend({ type: 'notification', notification: { id: 5 } });
    k2.serverSend({ type: 'notification', notification: { id: 6 } });
    k2.serverSend({ type: 'sync', unread_count: 3, replayed: 2, complete: false });
    k2.serverSend({ type: 'notification', notification: { id: 6 } });
    // An announcement sent again unchanged is dropped; edited, it is delivered again.
    k2.serverSend({ type: 'global_notification', notification: { id: 2 } });
    k2.serverSend({ type: 'global_notification', notification: { id: 2, title: 'edited' } });
    out.catchUp = { got, refetches: refetches.slice() };
    k.stop();

    // --- a reconnect that cannot say where to resume asks the page to refetch
    const n = mk();
    const nRefetch = [];
    n.addEventListener('refetch', (e) => nRefetch.push(e.detail.reason));
    n.start();
    const n1 = FakeWS.instances.at(-1);
    n1.serverOpen();
    n1.serverClose(1006);
    await until(() => FakeWS.instances.at(-1) !== n1);
    FakeWS.instances.at(-1).serverOpen();
    out.noResume = { url: FakeWS.instances.at(-1).url, refetches: nRefetch };
    n.stop();

    // --- backoff: exponential, capped, jittered
    const b = new HeraldClient({ baseDelayMs: 1000, maxDelayMs: 8000 });
    out.delays = [1, 2, 3, 4, 5, 6].map((n) => Array.from({ length: 200 }, () => b.backoffDelay(n)));
    return out;
  });

  const port = fx.server.port;
  assert.equal(result.url, `ws://127.0.0.1:${port}/ws/notifications/?sync=1`);
  assert.equal(result.firstUrl, `ws://127.0.0.1:${port}/ws/notifications/?sync=1`);
  assert.equal(result.resumeUrl, `ws://127.0.0.1:${port}/ws/notifications/?sync=1&last_id=5&last_global_id=2`);
  assert.deepEqual(result.catchUp.got, [
    ['sync', 1],
    ['n', 5],
    ['g', 2],
    ['n', 6],
    ['sync', 3],
    ['g', 2],
  ]);
  assert.deepEqual(result.catchUp.refetches, ['incomplete']);
  assert.equal(result.noResume.url, `ws://127.0.0.1:${port}/ws/notifications/?sync=1`);
  assert.deepEqual(result.noResume.refetches, ['no_resume_point']);
  assert.equal(result.stateBeforeOpen, 'connecting');
  assert.deepEqual(result.events, [
    ['open', false],
    ['message', 'notification'],
    ['notification', 'notification'],
    ['message', 'global_notification'],
    ['global_notification', 'global_notification'],
    ['message', 'notification_read'],
    ['notification_read', 'notification_read'],
    ['message', 'error'],
    ['error', 'error'],
    ['message', 'something_new'],
    ['something_new', 'something_new'],
  ]);
  assert.equal(result.markRead, true);
  assert.deepEqual(result.sent, [{ action: 'mark_read', notification_id: 7 }]);
  assert.equal(result.stateAfterDrop, 'reconnecting');
  assert.equal(result.markReadWhileDown, false);
  assert.deepEqual(result.reopened, [false, true]);
  assert.deepEqual(result.states, ['connecting', 'open', 'reconnecting', 'open']);
  assert.deepEqual(result.after4001, { state: 'closed', signedOut: 'revoked', newSockets: 0 });
  assert.equal(result.giveUp.attempts, 4);
  assert.equal(result.giveUp.sockets, 5, 'the first connection + 4 reconnect attempts');
  assert.equal(result.giveUp.state, 'closed');
  assert.equal(result.giveUp.closeReason, 'gave_up');
  assert.equal(result.giveUp.authChecks, 5, 'each failure before open asks /api/auth/me/');
  assert.deepEqual(result.refused, { reason: 'unauthenticated', sockets: 1, state: 'closed' });
  assert.equal(result.attemptsAfterHealthy, 0);
  assert.equal(result.stateAfter1008, 'reconnecting');
  assert.equal(result.stoppedState, 'closed');

  const caps = [1000, 2000, 4000, 8000, 8000, 8000];
  result.delays.forEach((ds, i) => {
    const min = Math.min(...ds);
    const max = Math.max(...ds);
    assert.ok(min >= caps[i] / 2 && max <= caps[i], `attempt ${i + 1}: ${min}..${max} within [${caps[i] / 2}, ${caps[i]}]`);
    assert.ok(new Set(ds).size > 20, `attempt ${i + 1}: delays are jittered`);
  });
  await screenshot(page, 'herald-client');
});
