// The watch page's share box: the link, the link at the current time (?t=, as YouTube's
// "Start at"), and the embed code, each with a copy button.
//
// Every URL starts from the install's public address, which the server put in the page
// (<meta name="videoforge:base-url">, from PUBLIC_URL) when it rendered it; a page the
// app reached without that (navigated to from another page) uses its own origin, which
// is the one the viewer reached us at. The embed code comes from the oEmbed provider,
// so the iframe is written (and escaped) in one place, on the server.
import { formatDuration, h, uid } from "./dom.js";

const MAX_START = 1e7;

/** "90", "90s", "1m30s", "1h2m3s" as whole seconds (as gateway/embed.py reads `start`);
 * 0 for anything else. Bounded, so a 5,000-digit ?t= is not Infinity (a seek to it throws). */
export function parseTime(value) {
  const text = String(value ?? "").trim().toLowerCase();
  if (/^[0-9]{1,9}$/.test(text)) return Math.min(Number(text), MAX_START);
  const match = /^(?:([0-9]{1,7})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,7})s)?$/.exec(text);
  if (!text || !match) return 0;
  const total = Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0);
  return Math.min(total, MAX_START);
}

export function baseUrl() {
  const meta = document.querySelector('meta[name="videoforge:base-url"]')?.getAttribute("content");
  return (meta || window.location.origin).replace(/\/+$/, "");
}

async function copyText(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (an insecure origin, a denied permission): select it for Ctrl+C.
    field.focus();
    field.select();
    return document.execCommand?.("copy") ?? false;
  }
}

function row(label, value, { multiline = false, name }) {
  const id = uid("share");
  const field = multiline
    ? h("textarea", { id, readonly: true, rows: 3, class: "share__input share__code", spellcheck: "false", dataset: { share: name } })
    : h("input", { id, type: "url", readonly: true, class: "share__input", dataset: { share: name } });
  field.value = value;
  field.addEventListener("focus", () => field.select());
  const labelEl = h("label", { for: id }, label);
  const status = h("span", { class: "share__status", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "button button--ghost", dataset: { copy: name } }, "Copy");
  button.addEventListener("click", async () => {
    const ok = await copyText(field.value, field);
    status.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
    setTimeout(() => {
      status.textContent = "";
    }, 3000);
  });
  const el = h("div", { class: "share__item" }, labelEl, h("div", { class: "share__row" }, field, button), status);
  return { el, field, labelEl };
}

/**
 * The share box of `video`; `currentTime()` is the player's position (0 before it plays).
 * Returns the element; its `update()` refreshes the timed link (the watch page calls it
 * as the video plays).
 */
export function shareBox(video, { currentTime = () => 0 } = {}) {
  const watchUrl = `${baseUrl()}/watch/${encodeURIComponent(video.id)}`;
  const link = row("Share", watchUrl, { name: "link" });
  const timed = row("Link at current time", watchUrl, { name: "timed" });
  const embed = row("Embed", "", { multiline: true, name: "embed" });
  embed.el.hidden = true;
  let shown = -1;
  const update = () => {
    const t = Math.max(0, Math.floor(Number(currentTime()) || 0));
    if (t === shown) return;
    shown = t;
    timed.field.value = `${watchUrl}?t=${t}`;
    timed.labelEl.textContent = `Link at current time (${formatDuration(t)})`;
  };
  update();

  const note =
    video.visibility === "unlisted"
      ? h("p", { class: "field__hint" }, "Unlisted: only people with this link can watch.")
      : video.visibility === "private"
        ? h("p", { class: "field__hint" }, "Private: only you can open this link, and embeds do not play it.")
        : null;
  const box = h("div", { class: "share" }, link.el, timed.el, embed.el, note);
  box.update = update;

  if (video.visibility !== "private") {
    const params = new URLSearchParams({ url: watchUrl, format: "json" });
    fetch(`/services/oembed?${params}`, { credentials: "omit" })
      .then((res) => (res.ok ? res.json() : null))
      .then((data) => {
        if (!data?.html) return;
        embed.field.value = data.html;
        embed.el.hidden = false;
      })
      .catch(() => {
        // Without the embed code the link still shares the video.
      });
  }
  return box;
}
