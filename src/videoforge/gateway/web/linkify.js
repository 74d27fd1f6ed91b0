// Descriptions as text with their http(s) links clickable and, on the watch page, their
// timestamps ("1:05", "1:02:03") as links that seek the video, as YouTube shows them.
// Built only from text nodes and <a> elements made with createElement (never innerHTML),
// so nothing in a description can become markup; links to other sites get
// rel="nofollow ugc noopener" (user-generated, not endorsed, and no window.opener for the
// page they open).

// A URL runs to the next space or angle bracket; trailing punctuation that usually ends a
// sentence (or closes a parenthesis opened before the URL) is left out of the link.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;
// m:ss, mm:ss or h:mm:ss, not inside a longer run of digits, colons or letters.
const TIME_RE = /(?<![\w:.])(?:(\d{1,2}):([0-5]\d)|(\d{1,2})):([0-5]\d)(?![\w:])/g;

/** Text with each timestamp up to `maxTime` as a link (?t=seconds, a shareable URL)
 * that calls `onTime`. */
function appendTimes(fragment, chunk, onTime, maxTime) {
  let last = 0;
  for (const match of chunk.matchAll(TIME_RE)) {
    const [stamp, hours, minutesAfterHours, minutesAlone, secs] = match;
    const seconds = Number(hours ?? 0) * 3600 + Number(minutesAfterHours ?? minutesAlone) * 60 + Number(secs);
    if (seconds > maxTime) continue; // past the end: stays text
    fragment.append(document.createTextNode(chunk.slice(last, match.index)));
    const a = document.createElement("a");
    a.href = `?t=${seconds}`;
    a.className = "timestamp";
    a.dataset.t = String(seconds);
    a.textContent = stamp;
    a.addEventListener("click", (event) => {
      event.preventDefault();
      onTime(seconds);
    });
    fragment.append(a);
    last = match.index + stamp.length;
  }
  fragment.append(document.createTextNode(chunk.slice(last)));
}

/**
 * A DocumentFragment of `text` with each http(s) URL as a link; with `onTime`, each
 * timestamp up to `maxTime` seconds too, whose click calls `onTime(seconds)`.
 */
export function linkify(text, { onTime = null, maxTime = Infinity } = {}) {
  const fragment = document.createDocumentFragment();
  const source = String(text ?? "");
  const appendText = (chunk) => {
    if (onTime) appendTimes(fragment, chunk, onTime, maxTime);
    else fragment.append(document.createTextNode(chunk));
  };
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
    appendText(source.slice(last, match.index));
    const a = document.createElement("a");
    a.href = parsed.href;
    a.textContent = url;
    a.rel = "nofollow ugc noopener";
    a.target = "_blank";
    fragment.append(a);
    last = match.index + url.length;
  }
  appendText(source.slice(last));
  return fragment;
}
