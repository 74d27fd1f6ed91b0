// Descriptions as text with their http(s) links clickable. Built only from text nodes and
// <a> elements made with createElement (never innerHTML), so nothing in a description can
// become markup; links to other sites get rel="nofollow ugc noopener" (user-generated,
// not endorsed, and no window.opener for the page they open).

// A URL runs to the next space or angle bracket; trailing punctuation that usually ends a
// sentence (or closes a parenthesis opened before the URL) is left out of the link.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;

/** A DocumentFragment of `text` with each http(s) URL as a link. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  const source = String(text ?? "");
  let last = 0;
  for (const match of source.matchAll(URL_RE)) {
    let url = match[0];
    const trail = TRAILING.exec(url);
    if (trail) url = url.slice(0, -trail[0].length);
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      continue; // not a URL after all: stays text
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") continue;
    fragment.append(document.createTextNode(source.slice(last, match.index)));
    const a = document.createElement("a");
    a.href = parsed.href;
    a.textContent = url;
    a.rel = "nofollow ugc noopener";
    a.target = "_blank";
    fragment.append(a);
    last = match.index + url.length;
  }
  fragment.append(document.createTextNode(source.slice(last)));
  return fragment;
}
