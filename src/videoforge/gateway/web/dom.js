// Small DOM helpers. User text only ever goes through textContent or attributes set with
// setAttribute, never innerHTML, so nothing a user typed can become markup.

/**
 * Build an element: h("a", {href: "/x", class: "link", onclick: fn}, "text", child).
 * Attributes starting with "on" become event listeners; `hidden`/`disabled` etc. accept
 * booleans; null/undefined/false attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix = "vf") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** "1:05", "12:03:09". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "";
  const total = Math.max(0, Math.round(Number(seconds)));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

const numberFormat = new Intl.NumberFormat(undefined, { notation: "compact" });
/** "1 view", "1.2K views" (or of another noun: formatCount(n, "comment", "comments")). */
export function formatCount(n, one, many) {
  const count = Number(n) || 0;
  return `${count === 1 ? "1" : numberFormat.format(count)} ${count === 1 ? one : many}`;
}

export const formatViews = (n) => formatCount(n, "view", "views");

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];
/** "3 days ago"; the exact date goes in a title/datetime attribute by the caller. */
export function formatRelative(iso) {
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return "";
  const diff = (then.getTime() - Date.now()) / 1000;
  for (const [unit, secs] of UNITS) {
    if (Math.abs(diff) >= secs) return relative.format(Math.round(diff / secs), unit);
  }
  return "just now";
}

/** A <time> element showing a relative date with the full date on hover. */
export function timeEl(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toLocaleString() }, formatRelative(iso));
}

/** "12.5 MB". */
export function formatBytes(bytes) {
  const n = Number(bytes) || 0;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/** Show a short message in the polite live region; errors also stay until dismissed. */
export function toast(message, { kind = "info", timeout = 5000 } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const close = h("button", { type: "button", class: "toast__close", "aria-label": "Dismiss" }, "×");
  const item = h("div", { class: `toast toast--${kind}` }, h("span", {}, message), close);
  close.addEventListener("click", () => item.remove());
  region.append(item);
  if (kind !== "error" && timeout) setTimeout(() => item.remove(), timeout);
}

/**
 * A modal confirmation built on <dialog> (focus is trapped and restored by the browser).
 * Resolves true when confirmed.
 */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const ok = h(
      "button",
      { type: "submit", value: "ok", class: `button ${danger ? "button--danger" : "button--primary"}` },
      confirmLabel,
    );
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId }, title),
        h("p", {}, message),
        h(
          "div",
          { class: "dialog__actions" },
          h("button", { type: "submit", value: "cancel", class: "button button--ghost" }, "Cancel"),
          ok,
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    ok.focus();
  });
}

/** A random id (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function randomId() {
  if (typeof crypto.randomUUID === "function" && window.isSecureContext) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}
