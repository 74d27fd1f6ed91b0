// YouTube's keyboard shortcuts for the watch page's player, page-wide while it lives:
// space/k play and pause, j/l ∓10 s, ←/→ ∓5 s, ↑/↓ volume, f fullscreen, m mute,
// c captions, 0–9 jump to 0–90 % of the video, Home/End to its start/end, and
// Shift+< / Shift+> one step slower/faster on the speed menu's choices. Keys typed into
// a field, and space on a focused button, keep their usual meaning.

/** Seconds: J/L and the arrow keys, as on YouTube. */
const LONG_SEEK = 10;
const SHORT_SEEK = 5;
const VOLUME_STEP = 0.05;
const EDITABLE = "input, textarea, select, [contenteditable=''], [contenteditable='true']";

/** The action of a key press; null when the key is not one (or belongs to what has focus). */
export function shortcutFor(event, container) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const target = event.target instanceof Element ? event.target : null;
  // Typing a comment, or a range/menu that uses the arrows itself.
  if (target?.closest(EDITABLE)) return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const onButton = Boolean(target?.closest("button, a[href], [role='menuitem'], [role='menuitemradio']"));
  const inPlayer = Boolean(target && container.contains(target));
  if (/^[0-9]$/.test(key)) return `percent-${key}`;
  switch (key) {
    case " ":
      // Space on a focused button presses that button; anywhere else it plays/pauses.
      return onButton ? null : "toggle";
    case "k":
      return "toggle";
    case "j":
      return "back-long";
    case "l":
      return "forward-long";
    case "ArrowLeft":
      return "back-short";
    case "ArrowRight":
      return "forward-short";
    case "ArrowUp":
      // Off the player, the arrows scroll the page as usual once the viewer has moved on.
      return inPlayer || !onButton ? "volume-up" : null;
    case "ArrowDown":
      return inPlayer || !onButton ? "volume-down" : null;
    case "Home":
      return "start";
    case "End":
      return "end";
    case ">":
      return "faster";
    case "<":
      return "slower";
    case "f":
      return "fullscreen";
    case "m":
      return "mute";
    case "c":
      return "captions";
    default:
      return null;
  }
}

/** The next speed of `speeds` (ascending) from `rate` in `direction` (+1 / -1). */
function nextSpeed(speeds, current, direction) {
  if (direction > 0) return speeds.find((s) => s > current + 1e-9) ?? current;
  return [...speeds].reverse().find((s) => s < current - 1e-9) ?? current;
}

/**
 * Listen for the shortcuts (through `listen`, so the player's destroy removes them).
 * `fullscreen`, `captions`, `showUI`, `rate` and `setRate` are the player's own (the
 * <video>'s playbackRate is 0 while the player buffers: the rate is the player's).
 */
export function attachShortcuts({ video, container, listen, speeds, rate, setRate, fullscreen, captions, showUI }) {
  listen(document, "keydown", (event) => {
    const action = shortcutFor(event, container);
    if (!action) return;
    event.preventDefault();
    const duration = Number.isFinite(video.duration) ? video.duration : Infinity;
    const seekTo = (time) => {
      video.currentTime = Math.min(Math.max(0, time), duration);
    };
    if (action.startsWith("percent-")) {
      if (Number.isFinite(duration)) seekTo((duration * Number(action.slice(8))) / 10);
      showUI();
      return;
    }
    switch (action) {
      case "toggle":
        if (video.paused) video.play().catch(() => {});
        else video.pause();
        break;
      case "back-long":
        seekTo(video.currentTime - LONG_SEEK);
        break;
      case "forward-long":
        seekTo(video.currentTime + LONG_SEEK);
        break;
      case "back-short":
        seekTo(video.currentTime - SHORT_SEEK);
        break;
      case "forward-short":
        seekTo(video.currentTime + SHORT_SEEK);
        break;
      case "start":
        seekTo(0);
        break;
      case "end":
        if (Number.isFinite(duration)) seekTo(duration);
        break;
      case "faster":
        setRate(nextSpeed(speeds, rate(), 1));
        break;
      case "slower":
        setRate(nextSpeed(speeds, rate(), -1));
        break;
      case "volume-up":
        video.muted = false;
        video.volume = Math.min(1, video.volume + VOLUME_STEP);
        break;
      case "volume-down":
        video.volume = Math.max(0, video.volume - VOLUME_STEP);
        break;
      case "fullscreen":
        fullscreen();
        break;
      case "mute":
        video.muted = !video.muted;
        break;
      case "captions":
        captions();
        break;
      default:
        break;
    }
    showUI();
  });
}
