// Herald notification page (`/`): sign-in/register, live list, badge, toasts,
// browser notifications, announcements banner and connection indicator.
import { HeraldClient, apiFetch, ApiError } from '/static/herald.js';
import { $, el } from '/static/common.js';

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

const app = {
  user: null,
  client: null,
  notifications: new Map(), // id -> notification
  unread: 0,
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

/** Only same-site paths or http(s) URLs become clickable links. */
function safeHref(link) {
  if (!link || typeof link !== 'string') return null;
  if (link.startsWith('/') && !link.startsWith('//')) return link;
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

function recountUnread() {
  let n = 0;
  for (const x of app.notifications.values()) if (!x.is_read) n++;
  return n;
}

function sortedNotifications() {
  return [...app.notifications.values()].sort((a, b) => {
    const t = Date.parse(b.created_at) - Date.parse(a.created_at);
    return t !== 0 && !Number.isNaN(t) ? t : b.id - a.id;
  });
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
    n.is_read
      ? null
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
  );
  return li;
}

function renderList() {
  const list = $('notif-list');
  const items = sortedNotifications();
  // Keep keyboard focus stable across re-renders.
  const focusedId = document.activeElement?.closest?.('.notif')?.dataset.id;
  list.replaceChildren(...items.map(notificationItem));
  $('notif-empty').hidden = items.length > 0;
  if (focusedId) {
    const again = list.querySelector(`.notif[data-id="${CSS.escape(focusedId)}"] button, .notif[data-id="${CSS.escape(focusedId)}"] a`);
    (again || $('notif-title')).focus({ preventScroll: true });
  }
}

async function loadNotifications() {
  const data = await apiFetch('/api/notifications/');
  const fetched = new Map();
  let maxId = 0;
  for (const n of data.notifications || []) {
    fetched.set(n.id, n);
    maxId = Math.max(maxId, n.id);
  }
  // A push that raced past this snapshot (newer id) is kept.
  let extraUnread = 0;
  for (const n of app.notifications.values()) {
    if (n.id > maxId && !fetched.has(n.id)) {
      fetched.set(n.id, n);
      if (!n.is_read) extraUnread++;
    }
  }
  app.notifications = fetched;
  setUnread((typeof data.unread_count === 'number' ? data.unread_count : recountUnread()) + extraUnread);
  renderList();
  // A reconnect resumes from here: the server replays what is newer.
  if (app.client) app.client.seen({ lastId: maxId });
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
  } catch (err) {
    handleApiError(err, 'Could not mark all as read');
    btn.disabled = app.unread === 0;
  }
}

function applyRead(ids, unreadCount) {
  let changed = false;
  for (const id of ids || []) {
    const n = app.notifications.get(id);
    if (n && !n.is_read) {
      n.is_read = true;
      changed = true;
    }
  }
  setUnread(typeof unreadCount === 'number' ? unreadCount : recountUnread());
  if (changed) renderList();
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

function toast({ title, message, level = 'info', kind = 'notification', link = null }) {
  const box = $('toasts');
  const href = safeHref(link);
  const t = el(
    'div',
    { className: `toast toast-${level}`, dataset: { kind, level } },
    el(
      'div',
      { className: 'toast-body' },
      el('strong', { className: 'toast-title' }, title),
      message ? el('p', { className: 'toast-message' }, message) : null,
      href ? el('a', { href, className: 'toast-link' }, 'Open') : null,
    ),
    el('button', { type: 'button', className: 'toast-close', 'aria-label': 'Dismiss notification', onclick: () => t.remove() }, '×'),
  );
  box.append(t);
  // Keep the stack short.
  while (box.children.length > 4) box.firstElementChild.remove();
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
    // A push that raced past this snapshot is newer than it: keep it.
    for (const [id, g] of racing) if (!fetched.has(id)) fetched.set(id, g);
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
  // Deactivations are not pushed; refresh now and then, and drop expired ones.
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
    app.notifications.set(n.id, n);
    if (!known && !n.is_read) setUnread(app.unread + 1);
    renderList();
    if (!known) {
      toast({ title: n.title, message: n.message, level: 'info', kind: 'notification', link: n.link });
      browserNotify(n.title, n.message, `herald-${n.id}`, n.link);
    }
  });

  client.addEventListener('global_notification', (e) => {
    const g = e.detail.notification;
    if (!g || typeof g.id !== 'number') return;
    if (!isCurrent(g)) return;
    const known = app.globals.has(g.id);
    app.globals.set(g.id, g);
    for (const racing of app.globalsRacing) racing.set(g.id, g);
    renderAnnouncements();
    if (!known) {
      toast({ title: g.title, message: g.message, level: ['info', 'warning', 'danger'].includes(g.level) ? g.level : 'info', kind: 'global' });
      browserNotify(g.title, g.message, `herald-global-${g.id}`, null);
    }
  });

  client.addEventListener('notification_read', (e) => {
    applyRead(e.detail.notification_ids, e.detail.unread_count);
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
  loadNotifications().catch((err) => handleApiError(err, 'Could not load notifications'));
  startLive();
}

function showSignedOut() {
  app.user = null;
  app.notifications.clear();
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
    const user = await apiFetch('/api/auth/me/');
    showSignedIn(user);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showSignedOut();
    else {
      showSignedOut();
      flash('Herald is not reachable right now. Try again in a moment.', 'error');
    }
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
