// Page helpers shared by Herald's own pages (app.js, admin.js); not part of the herald.js client API.
import { apiFetch, ApiError, getCookie } from '/static/herald.js';

/** The cookie the server sets, readable by page script, beside the session cookie at login. */
const CSRF_COOKIE = 'csrftoken';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * Builds an element: `props` become attributes (`className`, `dataset`, `on<event>` listeners and
 * boolean attributes handled; null/undefined/false skipped), `children` nodes or text.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/**
 * The signed-in account, or null when signed out, without an error in the browser console.
 *
 * The `csrftoken` cookie (readable by page script) is set at login beside the HttpOnly session
 * cookie, with the same lifetime, and removed at logout: without it there is no session to ask
 * about, so a signed-out page sends no `GET /api/auth/me/` (whose 401 the browser would log as
 * an error). With it, `/api/auth/me/` decides; a 401 there (the session was revoked elsewhere or
 * expired on the server) forgets the stale cookie so the next load asks nothing.
 */
export async function sessionUser() {
  if (!getCookie(CSRF_COOKIE)) return null;
  try {
    return await apiFetch('/api/auth/me/');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      document.cookie = `${CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Lax`;
      return null;
    }
    throw err;
  }
}
