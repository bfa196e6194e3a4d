// Page helpers shared by Herald's own pages (app.js, admin.js); not part of the herald.js client API.

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
