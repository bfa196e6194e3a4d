// Herald notification page (`/`): sign-in/register, live list (All/Unread, type filter, keyset
// "Load more", mark read/unread, delete, clear read), badge, toasts, muted types, browser
// notifications, announcements banner and connection indicator.
import { HeraldClient, apiFetch, ApiError } from '/static/herald.js';
import { $, el, sessionUser } from '/static/common.js';

const TYPE_LABELS = {
  job_application: 'Job application',
  job_post: 'Job post',
  message: 'Message',
  profile_view: 'Profile view',
  post_like: 'Post like',
  connection: 'Connection',
  system: 'System',
};

const STATE_TEXT = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
};

/** Items per page of the list; "Load more" fetches the next page by keyset (`before_id`). */
const PAGE_SIZE = 50;

const app = {
  user: null,
  client: null,
  notifications: new Map(), // id -> notification, those of the current view that are loaded
  unread: 0,
  view: { unreadOnly: false, type: '' }, // which notifications the list shows
  nextBeforeId: null, // where the next page starts; null: everything of this view is loaded
  listRequest: 0, // bumped by each view change: answers for an older view are dropped
  loadingMore: false,
  muted: [], // the types this user silenced (saved server-side)
  globals: new Map(), // id -> global notification
  globalsRacing: new Set(), // one Map per list request in flight: the pushes that arrived meanwhile
  globalsTimer: null,
};
// Handy for debugging (and for tests): the page's live state.
window.heraldApp = app;

// ---------------------------------------------------------------- utilities

function relativeTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 7) return `${d} d ago`;
  return new Date(t).toLocaleDateString();
}

function absoluteTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
}

/**
 * Only same-site paths or http(s) URLs become clickable links: the server's rule
 * (`domain::link`). A path is one '/' then neither '/' nor '\\' (browsers read both as the start
 * of another host); whitespace and control characters, which browsers strip, are refused.
 */
function safeHref(link) {
  if (!link || typeof link !== 'string') return null;
  if (/[\s\u0000-\u001f\u007f]/.test(link)) return null;
  if (link.startsWith('/')) return link[1] === '/' || link[1] === '\\' ? null : link;
  if (!/^https?:\/\/[^/\\?#@]+(?:[/\\?#]|$)/i.test(link)) return null;
  try {
    const u = new URL(link);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function flash(text, kind = 'info') {
  const f = $('flash');
  if (!text) {
    f.hidden = true;
    return;
  }
  f.textContent = text;
  f.dataset.kind = kind;
  f.hidden = false;
}

// ---------------------------------------------------------------- connection indicator

function renderConnState(state, reason) {
  const box = $('conn-state');
  box.dataset.state = state;
  let text = STATE_TEXT[state] || state;
  if (state === 'closed' && reason === 'gave_up') text = 'Offline — connection lost';
  if (state === 'closed' && (reason === 'revoked' || reason === 'unauthenticated')) text = 'Signed out';
  if (state === 'closed' && !app.user) text = 'Signed out';
  box.querySelector('.conn-text').textContent = text;
  box.title = `Live updates: ${text}`;
  $('conn-retry').hidden = !(state === 'closed' && reason === 'gave_up' && app.user);
}

// ---------------------------------------------------------------- badge & list

function setUnread(n) {
  app.unread = Math.max(0, n | 0);
  const badge = $('badge');
  badge.textContent = app.unread > 99 ? '99+' : String(app.unread);
  badge.dataset.count = String(app.unread);
  $('bell').setAttribute('aria-label', `Notifications, ${app.unread} unread`);
  $('unread-summary').textContent =
    app.unread === 0 ? 'No unread notifications' : `${app.unread} unread`;
  $('mark-all-read').disabled = app.unread === 0;
  document.title = app.unread > 0 ? `(${app.unread}) Herald — notifications` : 'Herald — notifications';
}

// Newest first by id, as the server pages them.
function sortedNotifications() {
  return [...app.notifications.values()].sort((a, b) => b.id - a.id);
}

/** Whether `n` belongs in the list as currently filtered. */
function inView(n) {
  if (app.view.unreadOnly && n.is_read) return false;
  if (app.view.type && n.notification_type !== app.view.type) return false;
  return true;
}

function listPath(beforeId) {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (app.view.unreadOnly) q.set('unread', 'true');
  if (app.view.type) q.set('type', app.view.type);
  if (beforeId) q.set('before_id', String(beforeId));
  return `/api/notifications/?${q}`;
}

function notificationItem(n) {
  const href = safeHref(n.link);
  const title = href ? el('a', { href, className: 'notif-title' }, n.title) : el('span', { className: 'notif-title' }, n.title);
  const li = el(
    'li',
    {
      className: 'notif' + (n.is_read ? ' is-read' : ' is-unread'),
      dataset: { id: String(n.id), type: n.notification_type || '' },
    },
    el('span', { className: 'notif-dot', 'aria-hidden': 'true' }),
    el(
      'div',
      { className: 'notif-body' },
      el(
        'div',
        { className: 'notif-head' },
        title,
        el('span', { className: `type-chip type-${n.notification_type}` }, TYPE_LABELS[n.notification_type] || n.notification_type),
      ),
      el('p', { className: 'notif-message' }, n.message),
      el(
        'div',
        { className: 'notif-meta' },
        el('time', { datetime: n.created_at, title: absoluteTime(n.created_at) }, relativeTime(n.created_at)),
        n.is_read ? el('span', { className: 'sr-only' }, 'Read') : el('span', { className: 'sr-only' }, 'Unread'),
      ),
    ),
    el(
      'div',
      { className: 'notif-actions' },
      n.is_read
        ? el(
            'button',
            {
              type: 'button',
              className: 'btn btn-small btn-ghost mark-unread',
              'aria-label': `Mark “${n.title}” as unread`,
              onclick: () => markUnread(n.id),
            },
            'Mark unread',
          )
        : el(
            'button',
            {
              type: 'button',
              className: 'btn btn-small btn-ghost mark-read',
              'aria-label': `Mark “${n.title}” as read`,
              onclick: () => markRead(n.id),
            },
            'Mark read',
          ),
      el(
        'button',
        {
          type: 'button',
          className: 'btn btn-small btn-danger-ghost delete',
          'aria-label': `Delete “${n.title}”`,
          onclick: () => deleteOne(n.id),
        },
        'Delete',
      ),
    ),
  );
  return li;
}

function renderList() {
  const list = $('notif-list');
  const items = sortedNotifications();
  // Keep keyboard focus stable across re-renders: on the same item's button of the same kind,
  // or, when that item left the list, on the item now in its place.
  const focused = document.activeElement;
  const focusedItem = focused?.closest?.('.notif');
  const focusedId = focusedItem?.dataset.id;
  const focusedKind = focused?.classList?.contains('delete') ? 'button.delete' : 'button';
  const focusedIndex = focusedItem ? [...list.children].indexOf(focusedItem) : -1;
  list.replaceChildren(...items.map(notificationItem));
  $('notif-empty').hidden = items.length > 0;
  $('notif-empty-text').textContent =
    app.view.unreadOnly || app.view.type
      ? 'Nothing here for this view.'
      : "You're all caught up. New notifications appear here instantly.";
  $('load-more').hidden = app.nextBeforeId === null;
  if (focusedId) {
    const item = list.querySelector(`.notif[data-id="${CSS.escape(focusedId)}"]`) || list.children[Math.min(focusedIndex, list.children.length - 1)];
    const again = item?.querySelector(focusedKind) || item?.querySelector('button, a');
    (again || $('notif-title')).focus({ preventScroll: true });
  }
}

/** Loads the first page of the current view, replacing the list. */
async function loadNotifications() {
  const request = ++app.listRequest;
  $('notif-view').setAttribute('aria-busy', 'true');
  try {
    const data = await apiFetch(listPath(null));
    if (request !== app.listRequest) return;
    const fetched = new Map();
    let maxId = 0;
    for (const n of data.notifications || []) {
      fetched.set(n.id, n);
      maxId = Math.max(maxId, n.id);
    }
    // A push that raced past this snapshot (newer id) is kept; the unread count already has it
    // if it arrived before the count was taken, which cannot be told apart: the next change's
    // count (every push carries one) puts it right.
    for (const n of app.notifications.values()) {
      if (n.id > maxId && !fetched.has(n.id) && inView(n)) fetched.set(n.id, n);
    }
    app.notifications = fetched;
    app.nextBeforeId = typeof data.next_before_id === 'number' ? data.next_before_id : null;
    if (typeof data.unread_count === 'number') setUnread(data.unread_count);
    renderList();
    // A reconnect resumes from here: the server replays what is newer. Only the unfiltered view's
    // newest id is the user's newest; a filtered one leaves the resume point to the pushes.
    if (app.client && !app.view.unreadOnly && !app.view.type) app.client.seen({ lastId: maxId });
  } finally {
    if (request === app.listRequest) $('notif-view').setAttribute('aria-busy', 'false');
  }
}

/** Appends the next page of the current view (keyset: items older than the last one loaded). */
async function loadMore() {
  if (app.nextBeforeId === null || app.loadingMore) return;
  const request = app.listRequest;
  const btn = $('load-more');
  // Not `disabled`: that would drop keyboard focus from the button.
  app.loadingMore = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    const data = await apiFetch(listPath(app.nextBeforeId));
    if (request !== app.listRequest) return;
    const hadFocus = document.activeElement === btn;
    const added = data.notifications || [];
    for (const n of added) app.notifications.set(n.id, n);
    app.nextBeforeId = typeof data.next_before_id === 'number' ? data.next_before_id : null;
    if (typeof data.unread_count === 'number') setUnread(data.unread_count);
    renderList();
    // The button is gone after the last page: keyboard focus goes on to the first item it loaded.
    if (hadFocus && app.nextBeforeId === null) {
      const item = added[0] && $('notif-list').querySelector(`.notif[data-id="${added[0].id}"]`);
      (item?.querySelector('a, button') || $('notif-title')).focus({ preventScroll: true });
    }
  } catch (err) {
    handleApiError(err, 'Could not load more notifications');
  } finally {
    app.loadingMore = false;
    btn.removeAttribute('aria-busy');
  }
}

function selectView({ unreadOnly = app.view.unreadOnly, type = app.view.type }) {
  app.view = { unreadOnly, type };
  $('view-all').setAttribute('aria-selected', String(!unreadOnly));
  $('view-unread').setAttribute('aria-selected', String(unreadOnly));
  $('view-all').tabIndex = unreadOnly ? -1 : 0;
  $('view-unread').tabIndex = unreadOnly ? 0 : -1;
  $('notif-view').setAttribute('aria-labelledby', unreadOnly ? 'view-unread' : 'view-all');
  $('type-filter').value = type;
  // The old view stays (dimmed, aria-busy) until the new one arrives.
  loadNotifications().catch((err) => handleApiError(err, 'Could not load notifications'));
}

async function markRead(id) {
  const n = app.notifications.get(id);
  if (!n || n.is_read) return;
  // Prefer the socket: the server answers every tab with `notification_read`.
  if (app.client && app.client.markRead(id)) return;
  try {
    await apiFetch(`/api/notifications/${encodeURIComponent(id)}/mark-read/`, { method: 'POST' });
    applyRead([id], null);
  } catch (err) {
    handleApiError(err, 'Could not mark the notification as read');
  }
}

async function markAllRead() {
  const btn = $('mark-all-read');
  btn.disabled = true;
  try {
    await apiFetch('/api/notifications/mark-all-read/', { method: 'POST' });
    applyRead([...app.notifications.keys()], 0);
    // Those of other views (type filter, Unread) too: everything is read.
    dropToasts([...$('toasts').children].map((t) => Number(t.dataset.id)));
  } catch (err) {
    handleApiError(err, 'Could not mark all as read');
    btn.disabled = app.unread === 0;
  }
}

/** Notifications were read (here, or in another tab: the push); `unreadCount` from the server. */
function applyRead(ids, unreadCount) {
  // A read item needs no more announcing, wherever it was read.
  dropToasts(ids);
  let changed = 0;
  for (const id of ids || []) {
    const n = app.notifications.get(id);
    if (n && !n.is_read) {
      n.is_read = true;
      changed++;
      // The Unread view shows unread ones only.
      if (!inView(n)) app.notifications.delete(id);
    }
  }
  setUnread(typeof unreadCount === 'number' ? unreadCount : app.unread - changed);
  if (changed) renderList();
}

/** Notifications were marked unread. */
function applyUnread(ids, unreadCount) {
  let changed = 0;
  let missing = false;
  for (const id of ids || []) {
    const n = app.notifications.get(id);
    if (n && n.is_read) {
      n.is_read = false;
      changed++;
    } else if (!n) missing = true;
  }
  setUnread(typeof unreadCount === 'number' ? unreadCount : app.unread + changed);
  if (changed) renderList();
  // The Unread view lacks them (they were read when it loaded): reload it to show them in place.
  if (missing && app.view.unreadOnly) {
    loadNotifications().catch((err) => handleApiError(err, 'Could not load notifications'));
  }
}

/** Notifications were deleted. */
function applyDeleted(ids, unreadCount) {
  dropToasts(ids);
  let removed = 0;
  let removedUnread = 0;
  for (const id of ids || []) {
    const n = app.notifications.get(id);
    if (n) {
      app.notifications.delete(id);
      removed++;
      if (!n.is_read) removedUnread++;
    }
  }
  setUnread(typeof unreadCount === 'number' ? unreadCount : app.unread - removedUnread);
  if (removed) renderList();
}

async function markUnread(id) {
  const n = app.notifications.get(id);
  if (!n || !n.is_read) return;
  try {
    await apiFetch(`/api/notifications/${encodeURIComponent(id)}/mark-unread/`, { method: 'POST' });
    applyUnread([id], null);
  } catch (err) {
    handleApiError(err, 'Could not mark the notification as unread');
  }
}

async function deleteOne(id) {
  try {
    await apiFetch(`/api/notifications/${encodeURIComponent(id)}/`, { method: 'DELETE' });
    applyDeleted([id], null);
  } catch (err) {
    // Already gone (another tab deleted it): the list just catches up.
    if (err instanceof ApiError && err.status === 404) applyDeleted([id], null);
    else handleApiError(err, 'Could not delete the notification');
  }
}

async function clearRead() {
  if (!window.confirm('Delete all read notifications? This cannot be undone.')) return;
  const btn = $('clear-read');
  btn.disabled = true;
  try {
    const data = await apiFetch('/api/notifications/?read=true', { method: 'DELETE' });
    const read = [...app.notifications.values()].filter((n) => n.is_read).map((n) => n.id);
    applyDeleted(read, null);
    flash(data.count === 1 ? '1 read notification deleted.' : `${data.count} read notifications deleted.`, 'info');
  } catch (err) {
    handleApiError(err, 'Could not clear read notifications');
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- muted types

async function loadPreferences() {
  const data = await apiFetch('/api/preferences/');
  app.muted = Array.isArray(data.muted_types) ? data.muted_types : [];
  for (const box of document.querySelectorAll('#settings-form input[name=muted]')) box.checked = app.muted.includes(box.value);
}

async function savePreferences(e) {
  e.preventDefault();
  const status = $('settings-status');
  const btn = $('settings-save');
  const muted = [...document.querySelectorAll('#settings-form input[name=muted]:checked')].map((b) => b.value);
  btn.disabled = true;
  status.textContent = 'Saving…';
  try {
    const data = await apiFetch('/api/preferences/', { method: 'PUT', body: { muted_types: muted } });
    app.muted = data.muted_types || [];
    status.textContent = app.muted.length === 0 ? 'Saved: every type alerts.' : `Saved: ${app.muted.length} muted.`;
  } catch (err) {
    status.textContent = '';
    handleApiError(err, 'Could not save the settings');
  } finally {
    btn.disabled = false;
  }
}

function handleApiError(err, what) {
  if (err instanceof ApiError && err.status === 401) {
    signedOut('Your session has ended. Please sign in again.');
    return;
  }
  const detail = err instanceof ApiError ? err.message : 'network error';
  flash(`${what}: ${detail}`, 'error');
}

// ---------------------------------------------------------------- toasts & browser notifications

/** At most this many toasts at once, and never more than a third of the screen's height. */
const MAX_TOASTS = 3;

/**
 * Shows a toast in the strip under the top bar; `id` ties it to its notification (or
 * announcement) so it leaves when that is read, deleted or withdrawn (see dropToasts).
 */
function toast({ title, message, level = 'info', kind = 'notification', link = null, id = null }) {
  const box = $('toasts');
  const href = safeHref(link);
  const t = el(
    'div',
    { className: `toast toast-${level}`, dataset: { kind, level, id: id === null ? null : String(id) } },
    el(
      'div',
      { className: 'toast-body' },
      el('strong', { className: 'toast-title' }, title),
      message ? el('p', { className: 'toast-message' }, message) : null,
      href ? el('a', { href, className: 'toast-link' }, 'Open') : null,
    ),
    el('button', { type: 'button', className: 'toast-close', 'aria-label': 'Dismiss notification', onclick: () => t.remove() }, '×'),
  );
  box.prepend(t);
  // Keep the stack short: newest on top, the oldest go first.
  while (box.children.length > MAX_TOASTS) box.lastElementChild.remove();
  while (box.children.length > 1 && box.scrollHeight > window.innerHeight / 3) box.lastElementChild.remove();
  let remaining = level === 'danger' ? 12000 : 7000;
  let timer = setTimeout(() => t.remove(), remaining);
  // Pause while hovered or focused so it can be read / reached by keyboard.
  const pause = () => clearTimeout(timer);
  const resume = () => {
    clearTimeout(timer);
    timer = setTimeout(() => t.remove(), 3000);
  };
  t.addEventListener('mouseenter', pause);
  t.addEventListener('focusin', pause);
  t.addEventListener('mouseleave', resume);
  t.addEventListener('focusout', resume);
}

/** Removes the toasts of these notifications (`kind` 'notification') or announcements ('global'). */
function dropToasts(ids, kind = 'notification') {
  const gone = new Set((ids || []).map(String));
  for (const t of [...$('toasts').children]) {
    if (t.dataset.kind === kind && gone.has(t.dataset.id)) t.remove();
  }
}

function browserNotificationsSupported() {
  return typeof window.Notification === 'function';
}

function renderBrowserNotifControl() {
  const btn = $('enable-browser-notifs');
  const state = $('browser-notifs-state');
  if (!browserNotificationsSupported()) {
    btn.hidden = true;
    state.hidden = true;
    return;
  }
  const p = Notification.permission;
  btn.hidden = p !== 'default';
  state.hidden = p === 'default';
  state.textContent = p === 'granted' ? 'Browser notifications on' : 'Browser notifications blocked';
}

async function enableBrowserNotifications() {
  if (!browserNotificationsSupported()) return;
  try {
    await Notification.requestPermission();
  } catch {
    /* old callback-style API or refusal: the permission tells */
  }
  renderBrowserNotifControl();
}

function browserNotify(title, body, tag, link) {
  if (!browserNotificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body, tag, icon: '/static/favicon.svg' });
    const href = safeHref(link);
    n.onclick = () => {
      window.focus();
      if (href) window.location.assign(href);
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

// ---------------------------------------------------------------- announcements

const DISMISSED_KEY = 'herald.dismissedAnnouncements';

function dismissed() {
  try {
    return new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) || '[]'));
  } catch {
    return new Set();
  }
}

function dismissAnnouncement(id) {
  const d = dismissed();
  d.add(id);
  dropToasts([id], 'global');
  try {
    localStorage.setItem(DISMISSED_KEY, JSON.stringify([...d].slice(-200)));
  } catch {
    /* storage disabled: dismiss for this page only */
  }
  renderAnnouncements();
}

function isCurrent(g) {
  if (!g.expires_at) return true;
  const t = Date.parse(g.expires_at);
  return Number.isNaN(t) || t > Date.now();
}

function renderAnnouncements() {
  const box = $('announcements');
  const d = dismissed();
  const items = [...app.globals.values()]
    .filter((g) => isCurrent(g) && !d.has(g.id))
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id);
  box.replaceChildren(
    ...items.map((g) =>
      el(
        'div',
        {
          className: `announcement level-${g.level}`,
          dataset: { id: String(g.id), level: g.level },
          role: g.level === 'danger' ? 'alert' : null,
        },
        el('span', { className: 'announcement-icon', 'aria-hidden': 'true' }, g.level === 'info' ? 'i' : '!'),
        el(
          'div',
          { className: 'announcement-body' },
          el('strong', { className: 'announcement-title' }, g.title),
          ' ',
          el('span', { className: 'announcement-message' }, g.message),
          g.expires_at ? el('span', { className: 'announcement-expiry' }, ` · until ${absoluteTime(g.expires_at)}`) : null,
        ),
        el('button', { type: 'button', className: 'announcement-close', 'aria-label': `Dismiss announcement “${g.title}”`, onclick: () => dismissAnnouncement(g.id) }, '×'),
      ),
    ),
  );
}

async function loadAnnouncements() {
  const racing = new Map();
  app.globalsRacing.add(racing);
  try {
    const data = await apiFetch('/api/global-notifications/');
    const fetched = new Map((data.notifications || []).map((g) => [g.id, g]));
    // A push that raced past this snapshot is newer than it: keep it (null: a removal).
    for (const [id, g] of racing) {
      if (g === null) fetched.delete(id);
      else if (!fetched.has(id)) fetched.set(id, g);
    }
    app.globals = fetched;
    renderAnnouncements();
    if (app.client) app.client.seen({ lastGlobalId: Math.max(0, ...(data.notifications || []).map((g) => g.id)) });
  } catch {
    /* keep what we have; the next refresh will try again */
  } finally {
    app.globalsRacing.delete(racing);
  }
}

function scheduleAnnouncementRefresh() {
  clearInterval(app.globalsTimer);
  // Withdrawals are pushed; a refresh now and then covers what a lost socket missed.
  app.globalsTimer = setInterval(() => {
    if (document.visibilityState === 'visible') loadAnnouncements();
    else renderAnnouncements();
  }, 60000);
}

// ---------------------------------------------------------------- live client

function startLive() {
  if (app.client) app.client.stop();
  const client = new HeraldClient(window.HERALD_CONFIG || {});
  app.client = client;

  client.addEventListener('statechange', (e) => renderConnState(e.detail.state, e.detail.reason));

  const refetch = () => {
    loadNotifications().catch((err) => handleApiError(err, 'Could not load notifications'));
    loadAnnouncements();
  };
  // The first connection loads the lists; a reconnect gets what it missed replayed over the
  // socket, and `refetch` asks for the lists again when it could not be (or not all of it).
  client.addEventListener('open', (e) => {
    if (!e.detail.reconnected) refetch();
  });
  client.addEventListener('refetch', refetch);
  // The badge is right before any list arrives.
  client.addEventListener('sync', (e) => setUnread(e.detail.unread_count));

  client.addEventListener('notification', (e) => {
    const n = e.detail.notification;
    if (!n || typeof n.id !== 'number') return;
    const known = app.notifications.has(n.id);
    if (inView(n)) {
      app.notifications.set(n.id, n);
      renderList();
    }
    if (!known && !n.is_read) setUnread(app.unread + 1);
    if (!known) {
      toast({ title: n.title, message: n.message, level: 'info', kind: 'notification', link: n.link, id: n.id });
      browserNotify(n.title, n.message, `herald-${n.id}`, n.link);
    }
  });

  client.addEventListener('global_notification', (e) => {
    const g = e.detail.notification;
    if (!g || typeof g.id !== 'number') return;
    if (!isCurrent(g)) return;
    // An edited announcement comes again with the same id: its banner is replaced, no new toast.
    const known = app.globals.has(g.id);
    app.globals.set(g.id, g);
    for (const racing of app.globalsRacing) racing.set(g.id, g);
    renderAnnouncements();
    if (!known) {
      toast({ title: g.title, message: g.message, level: ['info', 'warning', 'danger'].includes(g.level) ? g.level : 'info', kind: 'global', id: g.id });
      browserNotify(g.title, g.message, `herald-global-${g.id}`, null);
    }
  });

  client.addEventListener('global_notification_removed', (e) => {
    const id = e.detail.id;
    app.globals.delete(id);
    dropToasts([id], 'global');
    for (const racing of app.globalsRacing) racing.set(id, null);
    renderAnnouncements();
  });

  client.addEventListener('notification_read', (e) => {
    applyRead(e.detail.notification_ids, e.detail.unread_count);
  });

  client.addEventListener('notification_unread', (e) => {
    applyUnread(e.detail.notification_ids, e.detail.unread_count);
  });

  client.addEventListener('notification_deleted', (e) => {
    applyDeleted(e.detail.notification_ids, e.detail.unread_count);
  });

  client.addEventListener('error', (e) => {
    console.warn('herald:', e.detail && e.detail.error);
  });

  client.addEventListener('signedout', (e) => {
    signedOut(e.detail.reason === 'revoked' ? 'You were signed out (the session ended elsewhere).' : 'Your session has ended. Please sign in again.');
  });

  client.start();
}

// ---------------------------------------------------------------- auth views

function showSignedIn(user) {
  app.user = user;
  flash('');
  $('auth').hidden = true;
  $('notif-panel').hidden = false;
  $('bell').hidden = false;
  $('user-menu').hidden = false;
  $('user-name').textContent = user.username;
  $('user-role').textContent = user.role;
  $('admin-link').hidden = user.role !== 'admin';
  renderBrowserNotifControl();
  setUnread(0);
  $('settings-status').textContent = '';
  selectView({ unreadOnly: false, type: '' });
  loadPreferences().catch((err) => handleApiError(err, 'Could not load the settings'));
  startLive();
}

function showSignedOut() {
  app.user = null;
  app.notifications.clear();
  app.nextBeforeId = null;
  app.listRequest++;
  $('notif-list').replaceChildren();
  setUnread(0);
  selectTab('signin');
  $('auth').hidden = false;
  $('notif-panel').hidden = true;
  $('bell').hidden = true;
  $('user-menu').hidden = true;
  renderConnState('closed', 'unauthenticated');
}

function signedOut(message) {
  if (app.client) {
    app.client.stop('signed_out');
    app.client = null;
  }
  showSignedOut();
  if (message) flash(message, 'warning');
}

async function checkSession() {
  try {
    const user = await sessionUser();
    if (user) showSignedIn(user);
    else showSignedOut();
  } catch {
    showSignedOut();
    flash('Herald is not reachable right now. Try again in a moment.', 'error');
  }
}

function formError(id, text) {
  const p = $(id);
  p.textContent = text || '';
  p.hidden = !text;
}

async function signIn(username, password) {
  const data = await apiFetch('/api/auth/login/', { method: 'POST', body: { username, password } });
  return data.user;
}

function selectTab(which) {
  const signin = which === 'signin';
  $('tab-signin').setAttribute('aria-selected', String(signin));
  $('tab-register').setAttribute('aria-selected', String(!signin));
  $('tab-signin').tabIndex = signin ? 0 : -1;
  $('tab-register').tabIndex = signin ? -1 : 0;
  $('signin-form').hidden = !signin;
  $('register-form').hidden = signin;
}

function wireAuthForms() {
  $('tab-signin').addEventListener('click', () => selectTab('signin'));
  $('tab-register').addEventListener('click', () => selectTab('register'));
  for (const id of ['tab-signin', 'tab-register']) {
    $(id).addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        const next = id === 'tab-signin' ? 'register' : 'signin';
        selectTab(next);
        $(next === 'signin' ? 'tab-signin' : 'tab-register').focus();
        e.preventDefault();
      }
    });
  }

  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const username = $('signin-username').value.trim();
    const password = $('signin-password').value;
    if (!username || !password) {
      formError('signin-error', 'Enter your username and password.');
      return;
    }
    formError('signin-error', '');
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const user = await signIn(username, password);
      form.reset();
      showSignedIn(user);
    } catch (err) {
      formError('signin-error', err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : `Sign-in failed: ${err.message}`);
    } finally {
      btn.disabled = false;
    }
  });

  $('register-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const username = $('register-username').value.trim();
    const password = $('register-password').value;
    const role = form.querySelector('input[name=role]:checked')?.value || 'jobseeker';
    if (!$('register-username').checkValidity()) {
      formError('register-error', 'Username: 3–150 letters, digits, “_”, “.” or “-”.');
      return;
    }
    if (!$('register-password').checkValidity()) {
      formError('register-error', 'Password: at least 8 characters.');
      return;
    }
    formError('register-error', '');
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      await apiFetch('/api/auth/register/', { method: 'POST', body: { username, password, role } });
      const user = await signIn(username, password);
      form.reset();
      showSignedIn(user);
    } catch (err) {
      formError('register-error', err instanceof ApiError && err.status === 409 ? 'That username is taken.' : `Registration failed: ${err.message}`);
    } finally {
      btn.disabled = false;
    }
  });

  $('logout').addEventListener('click', async () => {
    if (app.client) {
      app.client.stop('signed_out');
      app.client = null;
    }
    try {
      await apiFetch('/api/auth/logout/', { method: 'POST' });
    } catch {
      /* already signed out is fine */
    }
    showSignedOut();
    flash('You are signed out.', 'info');
    $('signin-username').focus();
  });
}

// ---------------------------------------------------------------- boot

function boot() {
  wireAuthForms();
  $('mark-all-read').addEventListener('click', markAllRead);
  $('clear-read').addEventListener('click', clearRead);
  $('load-more').addEventListener('click', loadMore);
  $('view-all').addEventListener('click', () => selectView({ unreadOnly: false }));
  $('view-unread').addEventListener('click', () => selectView({ unreadOnly: true }));
  for (const id of ['view-all', 'view-unread']) {
    $(id).addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        const unreadOnly = id === 'view-all';
        selectView({ unreadOnly });
        $(unreadOnly ? 'view-unread' : 'view-all').focus();
        e.preventDefault();
      }
    });
  }
  $('type-filter').addEventListener('change', (e) => selectView({ type: e.currentTarget.value }));
  $('settings-form').addEventListener('submit', savePreferences);
  $('enable-browser-notifs').addEventListener('click', enableBrowserNotifications);
  $('bell').addEventListener('click', () => {
    $('notif-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
    $('notif-title').focus({ preventScroll: true });
  });
  $('conn-retry').addEventListener('click', () => {
    if (app.client) app.client.start();
  });
  // Relative times drift; refresh them once a minute.
  setInterval(() => {
    for (const t of document.querySelectorAll('.notif time')) t.textContent = relativeTime(t.getAttribute('datetime'));
  }, 60000);
  loadAnnouncements();
  scheduleAnnouncementRefresh();
  checkSession();
}

boot();
