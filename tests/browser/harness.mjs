// Shared helpers for Herald's browser tests: start/stop the real server binary,
// call its REST API from Node, drive headless Chromium (playwright-core).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, after, beforeEach, afterEach } from 'node:test';
import { chromium } from 'playwright-core';

export { sleep };

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUT_DIR = join(REPO, 'test-output', 'browser');
export const ADMIN = { username: 'admin', password: 'admin-pass-123' };

export function heraldBin() {
  if (process.env.HERALD_BIN) return process.env.HERALD_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(REPO, 'target');
  return join(target, 'debug', 'herald');
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/** One Herald process; `restart()` keeps the same port and database file. */
export class HeraldServer {
  constructor({ port, dbPath, dir, ownsDir }) {
    this.port = port;
    this.dbPath = dbPath;
    this.dir = dir;
    this.ownsDir = ownsDir;
    this.proc = null;
    this.log = '';
  }

  /** Start a server on a free port with a fresh database (or the one given). */
  static async start({ dbPath, port } = {}) {
    let dir = null;
    let ownsDir = false;
    if (!dbPath) {
      dir = mkdtempSync(join(tmpdir(), 'herald-browser-'));
      ownsDir = true;
      dbPath = join(dir, 'herald.db');
    }
    const server = new HeraldServer({ port: port || (await freePort()), dbPath, dir, ownsDir });
    await server.start();
    return server;
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  url(path = '/') {
    return this.origin + path;
  }

  async start() {
    const bin = heraldBin();
    if (!existsSync(bin)) throw new Error(`Herald binary not found at ${bin} (set HERALD_BIN or build it)`);
    for (let tries = 0; ; tries++) {
      const proc = spawn(bin, [], {
        cwd: this.dir || tmpdir(),
        env: {
          ...process.env,
          HERALD_BIND: `127.0.0.1:${this.port}`,
          HERALD_DATABASE_URL: `sqlite://${this.dbPath}?mode=rwc`,
          HERALD_ADMIN_USERNAME: ADMIN.username,
          HERALD_ADMIN_PASSWORD: ADMIN.password,
          RUST_LOG: process.env.RUST_LOG || 'warn',
          // Many users and sockets from one address: the abuse limits would refuse them.
          HERALD_LIMITS__LOGIN_FAILURES_PER_USERNAME_PER_MINUTE: '0',
          HERALD_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE: '0',
          HERALD_LIMITS__REGISTRATIONS_PER_ADDRESS_PER_MINUTE: '0',
          HERALD_LIMITS__SOCKETS_PER_USER: '0',
          HERALD_LIMITS__SOCKET_MESSAGES_PER_SECOND: '0',
          HERALD_LIMITS__CONNECTIONS_PER_ADDRESS: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.proc = proc;
      const keep = (chunk) => {
        this.log = (this.log + chunk.toString()).slice(-20000);
      };
      proc.stdout.on('data', keep);
      proc.stderr.on('data', keep);
      let exited = null;
      proc.once('exit', (code, signal) => {
        exited = { code, signal };
        if (!this.stopping) {
          this.crashed = { code, signal };
          process.stderr.write(`\n[harness] Herald on port ${this.port} exited unexpectedly (${JSON.stringify(exited)}). Log tail:\n${this.log.slice(-4000)}\n`);
        }
      });
      const deadline = Date.now() + 30000;
      while (Date.now() < deadline) {
        if (exited) break;
        try {
          const res = await fetch(this.url('/healthz'), { signal: AbortSignal.timeout(1000) });
          if (res.status === 200) return this;
        } catch {
          /* not up yet */
        }
        await sleep(50);
      }
      if (!exited) {
        proc.kill('SIGKILL');
        throw new Error(`Herald did not answer /healthz within 30 s on port ${this.port}.\n${this.log}`);
      }
      // The port may have been taken in between (only for a fresh port): retry once or twice.
      if (tries < 2 && /address already in use|AddrInUse/i.test(this.log)) {
        await sleep(300);
        continue;
      }
      throw new Error(`Herald exited early (${JSON.stringify(exited)}).\n${this.log}`);
    }
  }

  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    this.stopping = true;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await done;
    clearTimeout(timer);
    this.stopping = false;
    this.proc = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stop and delete the temporary database directory; fail if the server had crashed. */
  async dispose() {
    await this.stop();
    if (this.ownsDir && this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (this.crashed) throw new Error(`Herald exited unexpectedly during the test: ${JSON.stringify(this.crashed)}`);
  }
}

/** JSON request from Node; returns { status, body, headers }. */
export async function api(server, path, { method = 'GET', token, body, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(server.url(path), { method, headers: h, body: payload, signal: AbortSignal.timeout(10000) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** api() that insists on a status. */
export async function apiOk(server, path, opts = {}, expected = [200, 201]) {
  const r = await api(server, path, opts);
  const want = Array.isArray(expected) ? expected : [expected];
  if (!want.includes(r.status)) {
    throw new Error(`${opts.method || 'GET'} ${path} → ${r.status} ${JSON.stringify(r.body)} (wanted ${want.join('/')})`);
  }
  return r.body;
}

export async function login(server, username, password) {
  return apiOk(server, '/api/auth/login/', { method: 'POST', body: { username, password } }, 200);
}

export async function adminToken(server) {
  return (await login(server, ADMIN.username, ADMIN.password)).token;
}

export async function register(server, username, password = 'password-123', role = 'jobseeker') {
  return apiOk(server, '/api/auth/register/', { method: 'POST', body: { username, password, role } }, 201);
}

export async function notify(server, token, userId, fields = {}) {
  return apiOk(
    server,
    '/api/notifications/',
    {
      method: 'POST',
      token,
      body: { user_id: userId, title: 'Hello', message: 'A message', notification_type: 'system', ...fields },
    },
    201,
  );
}

export async function announce(server, token, fields = {}) {
  return apiOk(
    server,
    '/api/global-notifications/',
    { method: 'POST', token, body: { title: 'Announcement', message: 'Something to know', level: 'info', ...fields } },
    201,
  );
}

// ---------------------------------------------------------------- browser

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

export async function newContext(browser, options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, ...options });
  ctx.setDefaultTimeout(10000);
  return ctx;
}

/** Record the WebSockets a page opens, with every frame it receives. */
export function trackSockets(page) {
  const sockets = [];
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), received: [], closed: false, at: Date.now() };
    sockets.push(entry);
    ws.on('framereceived', (f) => entry.received.push(typeof f.payload === 'string' ? f.payload : f.payload.toString()));
    ws.on('close', () => {
      entry.closed = true;
    });
  });
  return sockets;
}

/** Stub window.Notification so the test can see what would be shown. */
export async function stubBrowserNotifications(page, initialPermission = 'default') {
  await page.addInitScript((perm) => {
    const shown = [];
    let permission = perm;
    let requests = 0;
    class FakeNotification {
      constructor(title, options = {}) {
        shown.push({ title, body: options.body, tag: options.tag });
        this.title = title;
      }
      static get permission() {
        return permission;
      }
      static requestPermission() {
        requests++;
        permission = 'granted';
        return Promise.resolve(permission);
      }
      close() {}
    }
    Object.defineProperty(window, 'Notification', { value: FakeNotification, configurable: true, writable: true });
    window.__notifications = { shown, requests: () => requests };
  }, initialPermission);
}

export async function screenshot(page, name, { fullPage = false } = {}) {
  mkdirSync(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** Sign in through the page's form and wait for the live connection. */
export async function signInViaForm(page, username, password) {
  await page.locator('#signin-form').waitFor();
  await page.fill('#signin-username', username);
  await page.fill('#signin-password', password);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#notif-panel').waitFor();
  await waitForConn(page, 'open');
}

export async function waitForConn(page, state, timeout = 15000) {
  await page.locator(`#conn-state[data-state="${state}"]`).waitFor({ timeout });
}

export async function badgeCount(page) {
  return page.locator('#badge').getAttribute('data-count').then(Number);
}

/** Poll `fn` until it returns a truthy value. */
export async function waitUntil(fn, { timeout = 10000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${JSON.stringify(last)})`);
}

/**
 * Per-test fixture: a real server with a fresh database and a browser.
 * Usage: const fx = fixture(); ... beforeEach(fx.setup); afterEach(fx.teardown);
 */
export function fixture() {
  const fx = {
    server: null,
    browser: null,
    contexts: [],
    async setup() {
      fx.server = await HeraldServer.start();
      fx.contexts = [];
    },
    async teardown() {
      for (const c of fx.contexts) await c.close().catch(() => {});
      fx.contexts = [];
      if (fx.server) await fx.server.dispose();
      fx.server = null;
    },
    async launch() {
      fx.browser = await launchBrowser();
    },
    async close() {
      if (fx.browser) await fx.browser.close();
    },
    async context(options) {
      const c = await newContext(fx.browser, options);
      fx.contexts.push(c);
      return c;
    },
    /** A signed-in page for `username` (signed in through the form). */
    async signedInPage(username, password, { context, path = '/' } = {}) {
      const ctx = context || (await fx.context());
      const page = await ctx.newPage();
      await page.goto(fx.server.url(path));
      await signInViaForm(page, username, password);
      return page;
    },
    /**
     * A page signed in as `username` through the form, its WebSockets recorded from the
     * first one (see trackSockets); `heraldConfig`, when given, is set as
     * window.HERALD_CONFIG before the page's own scripts run. Resolves to { page, sockets }.
     */
    async trackedSignedInPage(username, password, { context, heraldConfig } = {}) {
      const ctx = context || (await fx.context());
      const page = await ctx.newPage();
      if (heraldConfig) {
        await page.addInitScript((config) => {
          window.HERALD_CONFIG = config;
        }, heraldConfig);
      }
      const sockets = trackSockets(page);
      await page.goto(fx.server.url('/'));
      await signInViaForm(page, username, password);
      return { page, sockets };
    },
  };
  return fx;
}

/**
 * fixture() with its hooks registered in the calling test file: one browser for the file,
 * a fresh server (and contexts) for each test.
 */
export function useFixture() {
  const fx = fixture();
  before(fx.launch);
  after(fx.close);
  beforeEach(fx.setup);
  afterEach(fx.teardown);
  return fx;
}
