// Adaptive playback: native HLS where the browser has it, hls.js otherwise, and the MP4
// renditions as a fallback when HLS fails. The chosen engine and source are exposed on
// the <video> element as data-engine / data-source (useful for support and for tests).
import { h } from "./dom.js";

const HLS_MIME = "application/vnd.apple.mpegurl";
const HLS_JS_URL = "/vendor/hls.min.js";
let hlsScript = null;

/** Load hls.js (served by the gateway from node_modules) once, on demand. */
function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsScript) {
    hlsScript = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_JS_URL;
      script.async = true;
      script.addEventListener("load", () => (window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load"))));
      script.addEventListener("error", () => {
        hlsScript = null;
        reject(new Error("hls.js could not be loaded"));
      });
      document.head.append(script);
    });
  }
  return hlsScript;
}

const byHeightDesc = (a, b) => (b.height || 0) - (a.height || 0);
/** "720p", or "Mobile (360p)" for a rung named otherwise. The number is the short side,
 * as the ladder's rungs count it: a 360x640 portrait rendition is 360p, not 640p. The
 * `quality` keys themselves stay what the processor named them. */
export function labelOf(r) {
  const q = String(r.quality || "");
  if (/^\d+p$/.test(q)) return q;
  const name = q ? q[0].toUpperCase() + q.slice(1) : "Source";
  const short = r.width && r.height ? Math.min(r.width, r.height) : r.height;
  return short ? `${name} (${short}p)` : name;
}

/**
 * Start playback of `stream` ({hls, renditions: [{quality, width, height, url}]}) in `video`.
 * `qualitySelect` is filled with Auto + each rung; `onNotice(text)` reports fallbacks.
 * Returns a function that tears everything down.
 */
export async function attachPlayer(video, stream, { qualitySelect, onNotice = () => {} }) {
  const renditions = [...(stream.renditions ?? [])].filter((r) => r.url).sort(byHeightDesc);
  let hls = null;
  let destroyed = false;
  let fellBack = false;

  const setSource = (url, engine, { keepTime = false } = {}) => {
    const time = video.currentTime;
    const wasPlaying = !video.paused;
    video.dataset.engine = engine;
    video.dataset.source = url;
    video.src = url;
    if (keepTime && time > 0) {
      video.addEventListener(
        "loadedmetadata",
        () => {
          video.currentTime = time;
          if (wasPlaying) video.play().catch(() => {});
        },
        { once: true },
      );
    }
  };

  const fillQualities = (options, selected) => {
    qualitySelect.replaceChildren(...options.map(([value, label]) => h("option", { value }, label)));
    qualitySelect.value = selected;
    qualitySelect.disabled = options.length < 2;
  };

  const useMp4 = (reason) => {
    if (destroyed) return;
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (renditions.length === 0) {
      onNotice("This video cannot be played right now. Please try again later.");
      return;
    }
    // Start with the largest rendition that fits the screen; the menu offers the others.
    const screenHeight = window.screen.height * (window.devicePixelRatio || 1);
    const start = renditions.find((r) => (r.height || 0) <= screenHeight) ?? renditions.at(-1);
    fillQualities(
      renditions.map((r, i) => [String(i), labelOf(r)]),
      String(renditions.indexOf(start)),
    );
    qualitySelect.onchange = () => setSource(renditions[Number(qualitySelect.value)].url, "mp4", { keepTime: true });
    if (reason) {
      fellBack = true;
      onNotice(reason);
    }
    setSource(start.url, "mp4", { keepTime: fellBack });
  };

  const onVideoError = () => {
    // A native HLS failure: fall back to progressive MP4 once.
    if (video.dataset.engine === "native" && !fellBack) {
      useMp4("Adaptive streaming failed; playing a fixed quality instead.");
    } else if (video.error) {
      onNotice("Playback failed. Please reload the page to try again.");
    }
  };
  video.addEventListener("error", onVideoError);

  if (!stream.hls) {
    useMp4(null);
  } else if (video.canPlayType(HLS_MIME)) {
    // Native HLS (Safari, iOS, recent Chromium): Auto is the adaptive playlist; the fixed
    // qualities are the MP4 renditions, since native players expose no level API.
    fillQualities(
      [["auto", "Auto"], ...renditions.map((r, i) => [String(i), labelOf(r)])],
      "auto",
    );
    qualitySelect.onchange = () => {
      const v = qualitySelect.value;
      if (v === "auto") setSource(stream.hls, "native", { keepTime: true });
      else setSource(renditions[Number(v)].url, "mp4", { keepTime: true });
    };
    setSource(stream.hls, "native");
  } else {
    let Hls;
    try {
      Hls = await loadHlsJs();
    } catch {
      Hls = null;
    }
    if (destroyed) return () => {};
    if (!Hls || !Hls.isSupported()) {
      useMp4(null);
    } else {
      hls = new Hls({ capLevelToPlayerSize: true, maxBufferLength: 30 });
      let mediaRecoveries = 0;
      video.dataset.engine = "hls.js";
      video.dataset.source = stream.hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
        const levels = data.levels.map((level, index) => ({ level, index })).sort((a, b) => byHeightDesc(a.level, b.level));
        fillQualities(
          [["-1", "Auto"], ...levels.map(({ level, index }) => [String(index), level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kbps`])],
          "-1",
        );
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
        const auto = qualitySelect.querySelector('option[value="-1"]');
        const level = hls?.levels?.[data.level];
        if (auto && level?.height) auto.textContent = `Auto (${level.height}p)`;
      });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 1) {
          mediaRecoveries += 1;
          hls.recoverMediaError();
          return;
        }
        useMp4("Adaptive streaming failed; playing a fixed quality instead.");
      });
      qualitySelect.onchange = () => {
        // currentLevel switches now (flushing the buffer); -1 hands control back to ABR.
        if (hls) hls.currentLevel = Number(qualitySelect.value);
      };
      hls.loadSource(stream.hls);
      hls.attachMedia(video);
    }
  }

  return () => {
    destroyed = true;
    video.removeEventListener("error", onVideoError);
    qualitySelect.onchange = null;
    if (hls) hls.destroy();
    hls = null;
    video.removeAttribute("src");
    video.load();
  };
}
