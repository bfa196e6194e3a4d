// The pages on a phone (390x844) and a desktop (1280x800): no sideways scrolling on the list page
// or the admin page, toasts that cover no list item and leave when their item is read, no console
// error when signed out. SCREENSHOTS=1 also writes the README's pictures into docs/.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, REPO, ADMIN, adminToken, register, notify, announce, api, screenshot, waitUntil, waitForConn } from './harness.mjs';

const fx = fixture();
before(fx.launch);
after(fx.close);
beforeEach(fx.setup);
afterEach(fx.teardown);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const VIEWPORTS = [
  ['390', PHONE],
  ['1280', DESKTOP],
];

/** The share of an item's area a toast may overlap (a shadow's worth), at most. */
const COVER_MARGIN = 0.02;

const DOCS = join(REPO, 'docs');
async function docsScreenshot(page, name) {
  if (!process.env.SCREENSHOTS) return;
  mkdirSync(DOCS, { recursive: true });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(300); // let the toasts slide in
  await page.screenshot({ path: join(DOCS, `${name}.png`) });
}

async function widthOf(page) {
  return page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, viewport: window.innerWidth }));
}

/**
 * The document is no wider than the viewport, and the viewport is the screen's width (a mobile
 * browser widens its layout viewport, zooming out, to fit a too-wide page).
 */
async function assertNoSidewaysScroll(page, what) {
  const { scroll, viewport } = await widthOf(page);
  const screen = page.viewportSize().width;
  assert.ok(scroll <= viewport, `${what}: the document is ${scroll} px wide in a ${viewport} px viewport`);
  assert.ok(viewport <= screen, `${what}: the layout viewport is ${viewport} px on a ${screen} px screen`);
}

/** A user with a full first page of varied notifications, some read, one with a long title. */
async function userWithFullList(token, username) {
  const user = await register(fx.server, username, 'password-123');
  const types = ['job_application', 'message', 'profile_view', 'post_like', 'connection', 'job_post', 'system'];
  const ids = [];
  for (let i = 0; i < 52; i++) {
    const n = await notify(fx.server, token, user.id, {
      title: i === 51 ? 'A rather long title: Senior Platform Engineer (Rust, PostgreSQL, Kubernetes) at Initech' : `Update number ${i + 1}`,
      message: i % 3 === 0 ? 'https://example.com/a/very/long/link/without/any/spaces/that/could/push/the/page/wider/than/the/screen' : 'Something happened on your account.',
      notification_type: types[i % types.length],
      link: i % 4 === 0 ? '/jobs/42/' : null,
    });
    ids.push(n.id);
  }
  const { token: userToken } = (await api(fx.server, '/api/auth/login/', { method: 'POST', body: { username, password: 'password-123' } })).body;
  for (const id of ids.slice(0, 10)) await api(fx.server, `/api/notifications/${id}/mark-read/`, { method: 'POST', token: userToken });
  return user;
}

/** Rectangles of the visible toasts and list items, and the viewport's height. */
function layout(page) {
  return page.evaluate(() => {
    const rect = (e) => {
      const r = e.getBoundingClientRect();
      return { x: r.left, y: r.top, w: r.width, h: r.height };
    };
    const box = document.getElementById('toasts');
    return {
      viewportHeight: window.innerHeight,
      stack: rect(box),
      toasts: [...box.querySelectorAll('.toast')].map((t) => ({ ...rect(t), text: t.textContent })),
      items: [...document.querySelectorAll('#notif-list .notif')]
        .map((li) => ({ ...rect(li), id: li.dataset.id }))
        .filter((r) => r.y < window.innerHeight && r.y + r.h > 0),
    };
  });
}

function overlap(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

function assertToastsCoverNothing(l, what) {
  assert.ok(l.items.length > 0, `${what}: some list items are on screen`);
  for (const item of l.items) {
    for (const t of l.toasts) {
      const share = overlap(item, t) / (item.w * item.h);
      assert.ok(share <= COVER_MARGIN, `${what}: toast "${t.text}" covers ${(share * 100).toFixed(1)}% of item ${item.id}`);
    }
  }
  assert.ok(l.stack.h <= l.viewportHeight / 3, `${what}: the toast stack is ${l.stack.h} px high in a ${l.viewportHeight} px viewport`);
}

for (const [name, viewport] of VIEWPORTS) {
  test(`${name} px: the list page fits the width; three toasts cover no item and leave when read here or in another tab`, async () => {
    const token = await adminToken(fx.server);
    const user = await userWithFullList(token, `phone${name}`);
    await announce(fx.server, token, { title: 'Scheduled maintenance', message: 'Herald will be read-only tonight from 22:00 to 22:30 UTC.', level: 'warning' });

    const ctx = await fx.context({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
    const page = await fx.signedInPage(user.username, 'password-123', { context: ctx });
    await page.locator('#notif-list .notif').nth(49).waitFor();
    await page.locator('.announcement').first().waitFor();
    await assertNoSidewaysScroll(page, 'signed-in list with a banner');

    // The banner's text starts on the content column's edge, as the cards and the top bar do.
    const edges = await page.evaluate(() => ({
      banner: document.querySelector('.announcement-icon').getBoundingClientRect().left,
      card: document.getElementById('notif-panel').getBoundingClientRect().left,
      brand: document.querySelector('.brand').getBoundingClientRect().left,
    }));
    assert.ok(Math.abs(edges.banner - edges.card) <= 1, `banner aligned with the content: ${JSON.stringify(edges)}`);
    assert.ok(Math.abs(edges.brand - edges.card) <= 1, `top bar aligned with the content: ${JSON.stringify(edges)}`);

    // A second tab of the same user.
    const other = await ctx.newPage();
    await other.goto(fx.server.url('/'));
    await other.locator('#notif-list .notif').first().waitFor();
    await waitForConn(other, 'open');

    const pushed = [];
    for (const title of ['Interview invitation from Acme', 'New message from Globex', 'Your profile was viewed']) {
      pushed.push(await notify(fx.server, token, user.id, { title, message: 'A recruiter wants to hear from you about the role you applied to last week.', notification_type: 'message' }));
    }
    await waitUntil(async () => (await page.locator('#toasts .toast').count()) === 3, { message: 'three toasts' });
    for (const n of pushed) await page.locator(`#notif-list .notif[data-id="${n.id}"]`).waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    await assertNoSidewaysScroll(page, 'list with three toasts');
    assertToastsCoverNothing(await layout(page), `${name} px, three toasts`);
    // The newest item, which the top toast announces, is on screen, uncovered.
    const l = await layout(page);
    assert.ok(l.items.some((i) => i.id === String(pushed[2].id)), `item ${pushed[2].id} is on screen beside its toast`);
    await docsScreenshot(page, `screenshot-${name}`);

    // Read here: its toast leaves (before its 7 s are up).
    await page.locator(`#notif-list .notif[data-id="${pushed[2].id}"] button.mark-read`).click();
    await page.locator(`#toasts .toast[data-id="${pushed[2].id}"]`).waitFor({ state: 'detached', timeout: 3000 });
    // Read in the other tab: its toast leaves here too.
    await other.locator(`#notif-list .notif[data-id="${pushed[0].id}"] button.mark-read`).click();
    await page.locator(`#toasts .toast[data-id="${pushed[0].id}"]`).waitFor({ state: 'detached', timeout: 3000 });
    assert.equal(await page.locator(`#toasts .toast[data-id="${pushed[1].id}"]`).count(), 1, 'the unread one keeps its toast');
    assertToastsCoverNothing(await layout(page), `${name} px, one toast left`);

    // Scrolled down the list (the toasts ride in the sticky top bar), still within a third.
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight / 2));
    await page.waitForTimeout(100);
    const scrolled = await layout(page);
    assert.ok(scrolled.stack.h <= scrolled.viewportHeight / 3, 'stack within a third when scrolled');

    // Mark all read: every toast of a notification leaves.
    await notify(fx.server, token, user.id, { title: 'One more' });
    await page.locator('#toasts .toast', { hasText: 'One more' }).waitFor();
    await page.click('#mark-all-read');
    await waitUntil(async () => (await page.locator('#toasts .toast[data-kind="notification"]').count()) === 0, { message: 'no notification toast after mark all read' });
  });

  test(`${name} px: the admin page fits the width, announcements as cards on a phone, every action reachable`, async () => {
    const token = await adminToken(fx.server);
    await announce(fx.server, token, { title: 'Scheduled maintenance tonight', message: 'Herald will be read-only from 22:00 to 22:30 UTC while the database is upgraded.', level: 'warning', expires_at: new Date(Date.now() + 3 * 86400000).toISOString() });
    await announce(fx.server, token, { title: 'New: saved searches', message: 'Save a search and hear about new jobs that match it.', level: 'info' });
    await announce(fx.server, token, { title: 'Security update', message: 'Please sign in again after 18:00 UTC.', level: 'danger', is_active: false });
    await announce(fx.server, token, { title: 'https://example.com/an/announcement/with/a/very/long/unbroken/address/in/its/title', message: 'x'.repeat(200), level: 'info' });

    const ctx = await fx.context({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
    const page = await ctx.newPage();
    await page.goto(fx.server.url('/admin/'));
    await page.fill('#signin-username', ADMIN.username);
    await page.fill('#signin-password', ADMIN.password);
    await page.click('#signin-form button[type=submit]');
    await page.locator('#console').waitFor();
    await page.locator('#globals-body tr').nth(3).waitFor();
    await assertNoSidewaysScroll(page, 'admin page with announcements');

    // Every action button of every announcement lies within the viewport's width.
    const buttons = await page.evaluate(() =>
      [...document.querySelectorAll('#globals-body button')].map((b) => {
        const r = b.getBoundingClientRect();
        return { label: b.getAttribute('aria-label'), left: r.left, right: r.right };
      }),
    );
    assert.equal(buttons.length, 12);
    for (const b of buttons) assert.ok(b.left >= 0 && b.right <= viewport.width, `${b.label} within the width: ${JSON.stringify(b)}`);
    if (viewport === PHONE) {
      // A card per announcement: the column names label the values.
      const label = await page.locator('#globals-body tr').first().locator('td[data-label="Status"]').evaluate((td) => getComputedStyle(td, '::before').content);
      assert.equal(label, '"Status"');
      await page.locator('#globals-title').scrollIntoViewIfNeeded();
      await page.evaluate(() => window.scrollBy(0, document.getElementById('globals-title').getBoundingClientRect().top - 70));
      await docsScreenshot(page, 'admin-390');
    }

    // Deactivate works from where it sits (and the page stays within the width).
    const row = page.locator('#globals-body tr', { hasText: 'New: saved searches' });
    await row.locator('button.deactivate').click();
    await row.locator('button.reactivate').waitFor();
    await assertNoSidewaysScroll(page, 'admin page after deactivating');
    await screenshot(page, `admin-${name}`, { fullPage: true });
  });
}

test('a signed-out load of / and /admin/ logs no console error and asks nothing that fails', async () => {
  const ctx = await fx.context({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  const errors = [];
  const failed = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  for (const path of ['/', '/admin/']) {
    await page.goto(fx.server.url(path));
    await page.locator('#signin-form').waitFor();
    await page.waitForLoadState('networkidle');
    await assertNoSidewaysScroll(page, `signed-out ${path}`);
  }
  assert.deepEqual(errors, [], 'no console error');
  assert.deepEqual(failed, [], 'no failed request');

  // Signed in then out again: the next load is as clean.
  await register(fx.server, 'olga', 'password-123');
  await page.goto(fx.server.url('/'));
  await page.fill('#signin-username', 'olga');
  await page.fill('#signin-password', 'password-123');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#notif-panel').waitFor();
  await page.click('#logout');
  await page.locator('#signin-form').waitFor();
  for (const path of ['/', '/admin/']) {
    await page.goto(fx.server.url(path));
    await page.locator('#signin-form').waitFor();
    await page.waitForLoadState('networkidle');
  }
  assert.deepEqual(errors, [], 'no console error after signing out');

  // A session that ended elsewhere: the page finds out once, forgets the stale cookie, and shows
  // the sign-in form; later loads ask nothing.
  await page.goto(fx.server.url('/'));
  await page.fill('#signin-username', 'olga');
  await page.fill('#signin-password', 'password-123');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#notif-panel').waitFor();
  const session = (await ctx.cookies()).find((c) => c.name === 'sessionid');
  await api(fx.server, '/api/auth/logout/', { method: 'POST', token: session.value });
  await page.goto(fx.server.url('/'));
  await page.locator('#signin-form').waitFor();
  assert.equal((await ctx.cookies()).some((c) => c.name === 'csrftoken'), false, 'the stale csrftoken cookie is forgotten');
  errors.length = 0;
  failed.length = 0;
  await page.goto(fx.server.url('/admin/'));
  await page.locator('#signin-form').waitFor();
  await page.waitForLoadState('networkidle');
  assert.deepEqual(errors, [], 'no console error on the next load');
  assert.deepEqual(failed, [], 'no failed request on the next load');

  // The API contract is unchanged: /api/auth/me/ without a session is still 401.
  assert.equal((await api(fx.server, '/api/auth/me/')).status, 401);
});
