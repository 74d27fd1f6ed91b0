// The embed page (/embed/:id, served by gateway/embed.py): the player alone, for other
// sites' iframes. The server has rendered the shell and parsed the options into data-*
// attributes (start, autoplay, muted, loop, controls, title); this asks for the stream
// and plays it with the watch page's player module.
//
// Anonymous on purpose: an embed shows every visitor of the embedding site the same
// thing, so it never uses the viewer's session (no api.js, credentials omitted) — a
// private video does not play here even for its owner.
//
// The player module is being reworked: only mountPlayer(container, video, stream,
// {videoId, onNotice}) and the returned destroy() are used; everything else goes through
// the <video> element itself.
import { mountPlayer } from "./shaka-player.js";
import { sendView } from "./view-count.js";

const root = document.getElementById("embed");
const video = root?.querySelector("video");
const notice = root?.querySelector(".embed__notice");
const opts = root?.dataset ?? {};
const on = (name) => opts[name] === "1";

function showNotice(text) {
  if (!notice) return;
  notice.textContent = text;
  notice.hidden = false;
}

/** Replace the player with a message (the stream was refused after the page loaded). */
function showMessage(heading, text) {
  const box = document.createElement("div");
  box.className = "embed embed--message";
  box.setAttribute("role", "status");
  box.dataset.state = "unavailable";
  const h = document.createElement("p");
  h.className = "embed__heading";
  h.textContent = heading;
  const p = document.createElement("p");
  p.className = "embed__text";
  p.textContent = text;
  box.append(h, p);
  root.replaceWith(box);
}

async function anonymous(path, init = {}) {
  return fetch(path, { ...init, credentials: "omit", headers: { Accept: "application/json" } });
}

/** Autoplay as the browser allows: with sound if it may, muted (with an Unmute button)
 * when it refuses — the rule every browser applies to pages the viewer has not touched. */
async function autoplay() {
  try {
    await video.play();
    return;
  } catch (err) {
    if (err?.name !== "NotAllowedError" || video.muted) return;
  }
  video.muted = true;
  try {
    await video.play();
  } catch (err) {
    // Not even muted: the big play button is there. Anything else (a play interrupted
    // by the player's own loading, on a busy machine) still ends with the video playing
    // muted, and the viewer must be offered the sound.
    if (err?.name === "NotAllowedError") return;
  }
  const unmute = document.createElement("button");
  unmute.type = "button";
  unmute.className = "embed__unmute";
  unmute.textContent = "Unmute";
  unmute.addEventListener("click", () => {
    video.muted = false;
    unmute.remove();
  });
  video.addEventListener("volumechange", () => {
    if (!video.muted) unmute.remove();
  });
  root.append(unmute);
}

async function start() {
  const videoId = opts.videoId;
  let response;
  try {
    response = await anonymous(`/api/gallery/stream/${encodeURIComponent(videoId)}`);
  } catch {
    showMessage("Video unavailable", "Playback is unavailable right now. Try again later.");
    return;
  }
  if (response.status === 404) {
    showMessage("Video unavailable", "This video is private or no longer available.");
    return;
  }
  if (response.status === 409) {
    showMessage("Processing", "This video is still being processed. Try again soon.");
    return;
  }
  if (!response.ok) {
    showMessage("Video unavailable", "Playback is unavailable right now. Try again later.");
    return;
  }
  let stream;
  try {
    stream = await response.json();
  } catch {
    showMessage("Video unavailable", "Playback is unavailable right now. Try again later.");
    return;
  }

  const startAt = Math.max(0, Number(opts.start) || 0);
  video.loop = on("loop");
  video.muted = on("muted");
  if (!on("controls")) root.classList.add("embed--no-controls");
  video.addEventListener("play", () => root.classList.add("embed--playing"));
  video.addEventListener("pause", () => root.classList.remove("embed--playing"));

  // One view per load, once playback really starts (as on the watch page).
  video.addEventListener(
    "playing",
    () => {
      sendView(async () => {
        try {
          const r = await anonymous(`/api/gallery/videos/${encodeURIComponent(videoId)}/views`, { method: "POST" });
          return { status: r.status, retryAfter: Number(r.headers.get("Retry-After")) || null };
        } catch {
          return { status: 0 }; // no answer: the network, or the server restarting
        }
      });
    },
    { once: true },
  );

  let player;
  try {
    player = await mountPlayer(root, video, stream, { videoId, onNotice: showNotice });
  } catch (err) {
    console.error(err);
    showNotice("This video cannot be played right now. Please try again later.");
    return;
  }
  window.addEventListener("pagehide", () => player.destroy?.(), { once: true });
  if (!on("controls")) {
    // Without controls a click still plays and pauses, as on YouTube.
    video.controls = false;
    root.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      if (video.paused) video.play().catch(() => {});
      else video.pause();
    });
  }
  // An embed starts at `start` (or the beginning), never where this browser stopped
  // on the watch page.
  if (Math.abs(video.currentTime - startAt) > 0.25) video.currentTime = startAt;
  if (on("autoplay")) await autoplay();
}

if (root && video) start();
