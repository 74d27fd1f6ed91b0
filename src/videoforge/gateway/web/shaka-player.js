// The watch page's player: shaka-player and its UI (served by the gateway from
// node_modules, never a CDN). DASH first, the HLS master if DASH is missing or fails,
// one MP4 rendition if both fail. Around shaka: the captions of the stream response that
// the manifest lacks, the storyboard as shaka's thumbnails track, chapter marks on the
// seek bar, YouTube's keyboard shortcuts, tap to play and resume where the viewer stopped.
// The engine and the source in use are on the <video> as data-engine / data-source.
import { formatDuration, h } from "./dom.js";
import { labelOf } from "./player.js";
import { attachShortcuts } from "./player-keys.js";

const SHAKA_JS_URL = "/vendor/shaka-player.ui.js";
const SHAKA_CSS_URL = "/vendor/shaka-controls.css";
const DASH_MIME = "application/dash+xml";
const HLS_MIME = "application/x-mpegurl";
/** Resume: not for the first or the last few seconds (the viewer watched it to the end). */
const RESUME_MIN = 3;
const RESUME_TAIL = 5;
const RESUME_SAVE_EVERY = 2;
const RESUME_PREFIX = "vf:resume:";
/** The speed menu's choices (and the steps of the < and > keys). */
const PLAYBACK_RATES = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

let shakaLoad = null;

/** shaka-player's UI build and stylesheet, once, on demand. */
function loadShaka() {
  if (window.shaka?.ui) return Promise.resolve(window.shaka);
  if (!shakaLoad) {
    if (!document.querySelector(`link[href="${SHAKA_CSS_URL}"]`)) {
      document.head.append(h("link", { rel: "stylesheet", href: SHAKA_CSS_URL }));
    }
    shakaLoad = new Promise((resolve, reject) => {
      const script = h("script", { src: SHAKA_JS_URL, async: true });
      script.addEventListener("load", () => {
        if (!window.shaka?.ui) {
          reject(new Error("shaka-player did not load"));
          return;
        }
        window.shaka.polyfill.installAll();
        resolve(window.shaka);
      });
      script.addEventListener("error", () => {
        shakaLoad = null;
        script.remove();
        reject(new Error("shaka-player could not be loaded"));
      });
      document.head.append(script);
    });
  }
  return shakaLoad;
}

// ------------------------------------------------------------------ resume
function readResume(videoId) {
  try {
    const saved = JSON.parse(window.localStorage.getItem(RESUME_PREFIX + videoId) ?? "null");
    const t = Number(saved?.t);
    const d = Number(saved?.d);
    if (!Number.isFinite(t) || t < RESUME_MIN) return null;
    if (Number.isFinite(d) && d > 0 && t > d - RESUME_TAIL) return null;
    return t;
  } catch {
    return null; // storage disabled or a foreign value: start from the beginning
  }
}

function writeResume(videoId, time, duration) {
  try {
    const key = RESUME_PREFIX + videoId;
    if (!Number.isFinite(time) || time < RESUME_MIN || (duration > 0 && time > duration - RESUME_TAIL)) {
      window.localStorage.removeItem(key);
    } else {
      window.localStorage.setItem(key, JSON.stringify({ t: Math.floor(time * 10) / 10, d: duration || null }));
    }
  } catch {
    // Private mode or a full quota: resuming is a convenience.
  }
}

// ------------------------------------------------------------------ chapters
/**
 * The chapters as a list below the player (YouTube's "Chapters" panel): each one a
 * button that seeks there; the one playing is marked. Null without chapters.
 */
export function chapterList(chapters, { onSeek }) {
  const items = (chapters ?? []).filter((c) => Number.isFinite(Number(c.start)));
  if (items.length === 0) return null;
  const buttons = items.map((c) =>
    h(
      "button",
      { type: "button", class: "chapters__item", dataset: { start: String(c.start) }, onclick: () => onSeek(Number(c.start)) },
      h("span", { class: "chapters__time" }, formatDuration(c.start)),
      h("span", { class: "chapters__title" }, c.title || "Untitled chapter"),
    ),
  );
  const list = h("ol", { class: "chapters__list" }, buttons.map((b) => h("li", {}, b)));
  const section = h("section", { class: "chapters", "aria-label": "Chapters" }, h("h2", { class: "chapters__heading" }, "Chapters"), list);
  /** Mark the chapter that holds `time` (aria-current, for people and styles alike). */
  section.markCurrent = (time) => {
    let current = -1;
    items.forEach((c, i) => {
      if (time >= Number(c.start)) current = i;
    });
    buttons.forEach((b, i) => {
      if (i === current) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  };
  return section;
}

/** Ticks on shaka's seek bar where each chapter after the first begins. */
function markChapters(container, chapters, duration) {
  const bar = container.querySelector(".shaka-seek-bar-container");
  if (!bar || !(duration > 0)) return;
  bar.querySelector(".vf-chapter-marks")?.remove();
  const marks = h("div", { class: "vf-chapter-marks", "aria-hidden": "true" });
  for (const c of chapters ?? []) {
    const start = Number(c.start);
    if (!(start > 0) || start >= duration) continue;
    const mark = h("span", { class: "vf-chapter-mark", title: c.title || "" });
    mark.style.left = `${(start / duration) * 100}%`;
    marks.append(mark);
  }
  bar.append(marks);
}

/** The chapter under the pointer on the seek bar, named above shaka's preview (as
 * YouTube does); the preview box itself is shaka's. */
function chapterTitleOnHover(container, chapters, video, listen) {
  const bar = container.querySelector(".shaka-seek-bar-container");
  const preview = container.querySelector("#shaka-player-ui-thumbnail-container");
  if (!bar || !preview || !(chapters ?? []).length) return;
  const title = h("div", { class: "vf-preview-chapter", "aria-hidden": "true" });
  preview.append(title);
  const show = (clientX) => {
    const rect = bar.getBoundingClientRect();
    if (!(rect.width > 0) || !(video.duration > 0)) return;
    const time = ((clientX - rect.left) / rect.width) * video.duration;
    const chapter = [...chapters].reverse().find((c) => time >= Number(c.start));
    title.textContent = chapter?.title ?? "";
    title.hidden = !chapter?.title;
  };
  listen(bar, "pointermove", (event) => show(event.clientX));
  listen(bar, "pointerdown", (event) => show(event.clientX));
}

// ------------------------------------------------------------------ the player
const byHeightDesc = (a, b) => (b.height || 0) - (a.height || 0);
const baseLanguage = (tag) => String(tag || "").toLowerCase().split("-")[0];

/**
 * Play `stream` (the gallery's stream response) in `video`, which sits in `container`.
 * Returns {destroy, seek}; `onNotice(text)` reports fallbacks, `onTime(t)` follows the
 * playhead (the chapter list). The player is `window.vfPlayer` while it lives (support
 * and tests read its tracks).
 */
export async function mountPlayer(container, video, stream, { videoId, onNotice = () => {}, onTime = () => {} }) {
  const cleanups = [];
  let destroyed = false;
  const saveResume = () => {
    if (video.dataset.engine && Number.isFinite(video.duration)) writeResume(videoId, video.currentTime, video.duration);
  };
  const listen = (target, type, fn, options) => {
    target.addEventListener(type, fn, options);
    cleanups.push(() => target.removeEventListener(type, fn, options));
  };
  let reloadWith = async () => {};
  const api = {
    destroy() {
      if (destroyed) return;
      destroyed = true;
      saveResume();
      for (const fn of cleanups.splice(0)) fn();
    },
    seek(time) {
      video.currentTime = time;
      video.play().catch(() => {});
    },
    /** Switch to `next` (a fresh stream response: the full ladder once a video that was
     * playing while it processed is ready) from where the viewer is. */
    reload(next) {
      return reloadWith(next);
    },
  };

  const sourcesOf = (s) => {
    const renditions = [...(s.renditions ?? [])].filter((r) => r.url).sort(byHeightDesc);
    const list = [
      s.dash ? { engine: "dash", url: s.dash, mime: DASH_MIME } : null,
      s.hls ? { engine: "hls", url: s.hls, mime: HLS_MIME } : null,
    ].filter(Boolean);
    const screenHeight = window.screen.height * (window.devicePixelRatio || 1);
    const first = renditions.find((r) => (r.height || 0) <= screenHeight) ?? renditions.at(-1);
    if (first) list.push({ engine: "mp4", url: first.url, mime: "video/mp4", label: labelOf(first) });
    return { list, mp4: first };
  };
  const { list: sources, mp4 } = sourcesOf(stream);

  let shaka;
  try {
    shaka = await loadShaka();
  } catch {
    shaka = null;
  }
  if (destroyed) return api;
  if (!shaka || !shaka.Player.isBrowserSupported()) {
    // No shaka (not installed, blocked): the browser's own player with one MP4.
    if (!mp4) {
      onNotice("This video cannot be played right now. Please try again later.");
      return api;
    }
    video.controls = true;
    video.dataset.engine = "mp4";
    video.dataset.source = mp4.url;
    video.src = mp4.url;
    cleanups.push(() => {
      video.removeAttribute("src");
      video.load();
    });
    return api;
  }

  const player = new shaka.Player();
  // The overlay first: attaching then picks its text displayer (cues drawn in the
  // container, above the controls) rather than the browser's <track> rendering.
  const ui = new shaka.ui.Overlay(player, container, video);
  await player.attach(video);
  ui.configure({
    controlPanelElements: [
      "play_pause",
      "mute",
      "volume",
      "time_and_duration",
      "spacer",
      "captions",
      "overflow_menu",
      "picture_in_picture",
      "fullscreen",
    ],
    overflowMenuButtons: ["quality", "language", "captions", "playback_rate", "chapter"],
    playbackRates: PLAYBACK_RATES,
    // The shortcuts below are YouTube's (shaka's own differ and only work in fullscreen
    // or on the seek bar); two handlers would seek twice.
    enableKeyboardPlaybackControls: false,
    // A big play button over the poster (the first thing a viewer looks for).
    addBigPlayButton: true,
    customContextMenu: false,
    enableTooltips: true,
    seekBarColors: { base: "rgba(255, 255, 255, 0.3)", buffered: "rgba(255, 255, 255, 0.55)", played: "rgb(224, 67, 58)" },
  });
  player.configure({
    // A long static video: a modest buffer, ABR capped to the player's size as YouTube.
    streaming: { bufferingGoal: 30, rebufferingGoal: 2 },
    abr: { restrictToElementSize: true },
  });
  window.vfPlayer = player;
  cleanups.unshift(() => {
    if (window.vfPlayer === player) delete window.vfPlayer;
    ui.destroy().catch(() => {});
  });

  // -- resume: the stored position, saved as the viewer watches
  let lastSaved = -Infinity;
  listen(video, "timeupdate", () => {
    onTime(video.currentTime);
    if (Math.abs(video.currentTime - lastSaved) >= RESUME_SAVE_EVERY) {
      lastSaved = video.currentTime;
      saveResume();
    }
  });
  listen(video, "pause", saveResume);
  listen(video, "seeked", saveResume);
  listen(video, "ended", () => writeResume(videoId, Infinity, video.duration));
  listen(window, "pagehide", saveResume);

  // -- load: DASH, then HLS, then one MP4 (from the same position on a fallback)
  let index = -1;
  const loadNext = async (startTime, reason) => {
    for (index += 1; index < sources.length; index += 1) {
      const source = sources[index];
      try {
        await player.load(source.url, startTime, source.mime);
        if (destroyed) return false;
        video.dataset.engine = source.engine;
        video.dataset.source = source.url;
        if (source.engine === "mp4" && reason) onNotice(reason);
        return true;
      } catch (err) {
        if (destroyed || err?.code === shaka.util.Error.Code.LOAD_INTERRUPTED) return false;
      }
    }
    onNotice("This video cannot be played right now. Please try again later.");
    return false;
  };
  const fixedQuality = "Adaptive streaming failed; playing a fixed quality instead.";
  const onError = async (event) => {
    const error = event.detail;
    if (error?.severity !== shaka.util.Error.Severity.CRITICAL || destroyed) return;
    const time = video.currentTime;
    const wasPlaying = !video.paused;
    if ((await loadNext(time > 0 ? time : null, fixedQuality)) && wasPlaying) video.play().catch(() => {});
  };
  player.addEventListener("error", onError);

  // A stream that is still growing (the video is processing) starts at its beginning:
  // shaka would otherwise start a playlist without an end at its live edge.
  const resumeAt = stream.partial ? 0 : readResume(videoId);
  if (!(await loadNext(resumeAt, fixedQuality)) || destroyed) return api;
  reloadWith = async (next) => {
    if (destroyed) return;
    const time = video.currentTime;
    const wasPlaying = !video.paused;
    sources.splice(0, sources.length, ...sourcesOf(next).list);
    index = -1;
    if ((await loadNext(time > 0 ? time : 0, fixedQuality)) && wasPlaying) video.play().catch(() => {});
    if (!destroyed && next.storyboard && video.dataset.engine !== "mp4") {
      player.addThumbnailsTrack(next.storyboard, "text/vtt").catch(() => {});
    }
  };

  // -- text tracks the manifest does not carry (an upload made after it was written):
  // the master playlist's SUBTITLES group and the MPD already have the others.
  const streaming = video.dataset.engine !== "mp4";
  if (streaming) {
    const have = new Set(player.getTextTracks().map((t) => baseLanguage(t.language)));
    for (const caption of stream.captions ?? []) {
      if (!caption.url || have.has(baseLanguage(caption.language))) continue;
      have.add(baseLanguage(caption.language));
      try {
        await player.addTextTrackAsync(
          caption.url,
          caption.language,
          "subtitles",
          "text/vtt",
          "",
          caption.label || "",
          Boolean(caption.forced),
        );
      } catch {
        // One broken caption file leaves the others usable.
      }
    }
    const preferred = (stream.captions ?? []).find((c) => c.default || c.forced);
    if (preferred) {
      const track = player.getTextTracks().find((t) => baseLanguage(t.language) === baseLanguage(preferred.language));
      if (track) {
        player.selectTextTrack(track);
        player.setTextTrackVisibility(true);
      }
    }
    if (stream.storyboard) player.addThumbnailsTrack(stream.storyboard, "text/vtt").catch(() => {});
    if (stream.chapters_url) player.addChaptersTrack(stream.chapters_url, "und", "text/vtt").catch(() => {});
  }
  if (destroyed) return api;

  // -- chapter marks once the seek bar knows the duration
  const mark = () => markChapters(container, stream.chapters, video.duration);
  if (Number.isFinite(video.duration) && video.duration > 0) mark();
  listen(video, "durationchange", mark);
  chapterTitleOnHover(container, stream.chapters, video, listen);

  // -- keyboard shortcuts (page-wide while the watch page is open, as on YouTube)
  attachShortcuts({
    video,
    container,
    listen,
    speeds: PLAYBACK_RATES,
    // As shaka's own speed menu sets it (the element's rate is 0 while it buffers).
    rate: () => player.getPlaybackRate(),
    setRate: (r) => player.trickPlay(r, false),
    fullscreen: () => ui.getControls().toggleFullScreen(),
    captions: () => {
      const tracks = player.getTextTracks();
      if (tracks.length === 0) return;
      if (!tracks.some((t) => t.active)) {
        const wanted = baseLanguage(navigator.language);
        player.selectTextTrack(tracks.find((t) => baseLanguage(t.language) === wanted) ?? tracks[0]);
      }
      player.setTextTrackVisibility(!player.isTextTrackVisible());
    },
    showUI: () => ui.getControls().showUI(),
  });

  // -- tap to play: on a touch screen one tap on a paused video plays it (shaka's own
  // first tap only shows the controls); taps on the controls keep their meaning.
  listen(
    container,
    "touchend",
    (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!video.paused || !target || target.closest("button, input, .shaka-settings-menu, .shaka-seek-bar-container")) return;
      event.preventDefault();
      event.stopPropagation();
      video.play().catch(() => {});
      ui.getControls().showUI();
    },
    { capture: true },
  );

  return api;
}
