// Playlists on other pages: the watch page's "Watch later" and "Save" actions, the
// playlist beside the player when a video is watched from one (?list=<id>), with "Next"
// and autoplay-next, and an uploader's public playlists on their page. The playlist
// pages themselves are in playlist-page.js.
import * as api from "./api.js";
import { h, replace, toast, uid } from "./dom.js";
import { VISIBILITIES } from "./edit-dialog.js";
import { navigate } from "./router.js";
import { mediaBox, thumbnailOf } from "./video-card.js";

/** Remembered across videos and visits, as YouTube's autoplay switch is. */
const AUTOPLAY_KEY = "vf:playlist-autoplay";
/** A one-shot note from the page that ended to the page that follows: play at once. */
const PLAY_NEXT_KEY = "vf:playlist-play";
/** Entries the panel reads to find the current video (pages of 100). */
const PANEL_PAGES = 10;

export const playlistUrl = (id) => `/playlist/${encodeURIComponent(id)}`;
export const watchInListUrl = (videoId, listId) =>
  `/watch/${encodeURIComponent(videoId)}?list=${encodeURIComponent(listId)}`;

export function autoplayNext() {
  try {
    return localStorage.getItem(AUTOPLAY_KEY) !== "off";
  } catch {
    return true;
  }
}

function setAutoplayNext(on) {
  try {
    localStorage.setItem(AUTOPLAY_KEY, on ? "on" : "off");
  } catch {
    // Private mode without storage: the switch still works for this page.
  }
}

export function visibilityLabel(value) {
  return VISIBILITIES.find(([v]) => v === value)?.[1] ?? value;
}

/** A form for a playlist's title, description and visibility (create or edit) in a modal
 * <dialog>; resolves with the saved playlist, or null when cancelled. */
export function playlistDialog({ playlist = null } = {}) {
  return new Promise((resolve) => {
    const headingId = uid("pl");
    const tId = uid("pl-title");
    const dId = uid("pl-desc");
    const vId = uid("pl-vis");
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const titleInput = h("input", { id: tId, name: "title", required: true, maxlength: 150 });
    titleInput.value = playlist?.title ?? "";
    const descInput = h("textarea", { id: dId, name: "description", rows: 3, maxlength: 5000 });
    descInput.value = playlist?.description ?? "";
    const visSelect = h(
      "select",
      { id: vId, name: "visibility" },
      VISIBILITIES.map(([value, label]) => h("option", { value }, label)),
    );
    visSelect.value = playlist?.visibility ?? "private";
    const save = h("button", { type: "submit", class: "button button--primary" }, playlist ? "Save" : "Create");
    const cancel = h("button", { type: "button", class: "button button--ghost" }, "Cancel");
    const form = h(
      "form",
      { class: "edit-form" },
      h("h2", { id: headingId }, playlist ? "Edit playlist" : "New playlist"),
      h("div", { class: "field" }, h("label", { for: tId }, "Title"), titleInput),
      h("div", { class: "field" }, h("label", { for: dId }, "Description"), descInput),
      h("div", { class: "field" }, h("label", { for: vId }, "Visibility"), visSelect),
      error,
      h("div", { class: "dialog__actions" }, cancel, save),
    );
    const dialog = h("dialog", { class: "dialog dialog--wide", "aria-labelledby": headingId }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = titleInput.value.trim();
      if (!title) {
        error.textContent = "Give the playlist a title.";
        error.hidden = false;
        titleInput.focus();
        return;
      }
      save.disabled = true;
      error.hidden = true;
      try {
        const fields = { title, description: descInput.value, visibility: visSelect.value };
        result = playlist ? await api.updatePlaylist(playlist.id, fields) : await api.createPlaylist(fields);
        dialog.close();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        save.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    titleInput.focus();
  });
}

/** "Save to…": a checkbox per playlist of mine (ticked when the video is in it; ticking
 * adds, unticking removes) and a way to make a new one with the video in it. */
async function saveDialog(video, { onChange }) {
  const headingId = uid("save");
  const list = h("ul", { class: "save-list", "aria-labelledby": headingId });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const close = h("button", { type: "button", class: "button button--ghost" }, "Done");
  const create = h("button", { type: "button", class: "button button--ghost" }, "+ New playlist");
  const dialog = h(
    "dialog",
    { class: "dialog save-dialog", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Save to…"),
    list,
    error,
    h("div", { class: "dialog__actions" }, create, close),
  );
  const showError = (message) => {
    error.textContent = message;
    error.hidden = false;
  };
  const row = (playlist) => {
    const id = uid("save-pl");
    const box = h("input", { type: "checkbox", id, checked: Boolean(playlist.contains_video) });
    box.addEventListener("change", async () => {
      box.disabled = true;
      error.hidden = true;
      try {
        if (box.checked) {
          await api.addToPlaylist(playlist.id, video.id);
          toast(`Saved to ${playlist.title}.`);
        } else {
          await api.removeFromPlaylist(playlist.id, video.id);
          toast(`Removed from ${playlist.title}.`);
        }
        onChange?.(playlist, box.checked);
      } catch (err) {
        box.checked = !box.checked;
        showError(err.message);
      } finally {
        box.disabled = false;
      }
    });
    return h(
      "li",
      { class: "save-list__item" },
      box,
      h("label", { for: id }, playlist.title),
      h("span", { class: "save-list__vis" }, visibilityLabel(playlist.visibility)),
    );
  };
  list.append(h("li", { class: "loading" }, "Loading your playlists…"));
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  create.addEventListener("click", async () => {
    const made = await playlistDialog();
    if (!made) return;
    try {
      await api.addToPlaylist(made.id, video.id);
      toast(`Saved to ${made.title}.`);
      list.append(row({ ...made, contains_video: true }));
      onChange?.(made, true);
    } catch (err) {
      showError(err.message);
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  try {
    const { items } = await api.myPlaylists({ videoId: video.id });
    replace(list, items.map(row));
  } catch (err) {
    replace(list);
    showError(`Could not load your playlists: ${err.message}`);
  }
}

/** The watch page's "Watch later" toggle and "Save" button (signed-in viewers). */
export function saveActions(video) {
  if (!api.user()) return null;
  const later = h("button", { type: "button", class: "button button--ghost", "aria-pressed": "false" }, "Watch later");
  let inLater = false;
  const show = (on) => {
    inLater = on;
    later.setAttribute("aria-pressed", String(on));
    later.textContent = on ? "✓ In Watch later" : "Watch later";
  };
  api
    .myPlaylists({ videoId: video.id })
    .then(({ items }) => show(Boolean(items.find((p) => p.kind === "watch_later")?.contains_video)))
    .catch(() => {
      // Only the label: the button still works.
    });
  later.addEventListener("click", async () => {
    later.disabled = true;
    try {
      if (inLater) {
        await api.removeFromPlaylist("watch-later", video.id);
        show(false);
        toast("Removed from Watch later.");
      } else {
        await api.addToPlaylist("watch-later", video.id);
        show(true);
        toast("Saved to Watch later.");
      }
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      later.disabled = false;
    }
  });
  const save = h("button", { type: "button", class: "button button--ghost" }, "Save");
  save.addEventListener("click", () =>
    saveDialog(video, {
      onChange: (playlist, on) => {
        if (playlist.kind === "watch_later") show(on);
      },
    }),
  );
  return h("div", { class: "save-actions" }, later, save);
}

/** The playlist beside the player (/watch/:id?list=:listId): its entries with the
 * current one highlighted, "Next", and autoplay-next when the video ends. */
export function playlistPanel(listId, video, ctx, { videoEl }) {
  const headingId = uid("panel");
  const title = h("a", { href: playlistUrl(listId), id: headingId }, "Playlist");
  const counter = h("span", { class: "playlist-panel__count" });
  const autoId = uid("autoplay");
  const auto = h("input", { type: "checkbox", id: autoId, checked: autoplayNext() });
  auto.addEventListener("change", () => setAutoplayNext(auto.checked));
  const next = h("button", { type: "button", class: "button button--ghost", disabled: true }, "Next ▶");
  const list = h("ol", { class: "playlist-panel__list", "aria-labelledby": headingId });
  const panel = h(
    "aside",
    { class: "playlist-panel", "aria-labelledby": headingId },
    h("div", { class: "playlist-panel__head" }, h("h2", { class: "playlist-panel__title" }, title), counter),
    h(
      "div",
      { class: "playlist-panel__controls" },
      next,
      h("label", { class: "playlist-panel__auto", for: autoId }, auto, " Autoplay"),
    ),
    list,
  );
  let nextId = null;

  const go = (videoId, { play }) => {
    if (play) {
      try {
        sessionStorage.setItem(PLAY_NEXT_KEY, videoId);
      } catch {
        // Without storage the next video waits for a click.
      }
    }
    return navigate(watchInListUrl(videoId, listId));
  };
  next.addEventListener("click", () => nextId && go(nextId, { play: true }));
  videoEl.addEventListener("ended", () => {
    if (nextId && auto.checked && ctx.isCurrent()) go(nextId, { play: true });
  });

  // Arrived here by autoplay-next (or "Next"): start as soon as the player can.
  let wanted = null;
  try {
    wanted = sessionStorage.getItem(PLAY_NEXT_KEY);
    if (wanted === video.id) sessionStorage.removeItem(PLAY_NEXT_KEY);
  } catch {
    wanted = null;
  }
  if (wanted === video.id) {
    const start = () => videoEl.play().catch(() => {});
    if (videoEl.readyState >= 2) start();
    else videoEl.addEventListener("canplay", start, { once: true });
  }

  (async () => {
    const entries = [];
    let cursor = null;
    let playlist = null;
    let current = -1;
    for (let n = 0; n < PANEL_PAGES; n += 1) {
      const page = await api.playlistVideos(listId, { cursor, limit: 100 });
      playlist = page.playlist;
      entries.push(...page.items);
      current = entries.findIndex((e) => e.available && e.video.id === video.id);
      cursor = page.next_cursor;
      // The one after the current video must be known too, for "Next".
      if (!cursor || (current >= 0 && current < entries.length - 1)) break;
    }
    if (!ctx.isCurrent()) return;
    title.textContent = playlist.title;
    panel.dataset.playlistId = playlist.id;
    counter.textContent =
      current >= 0 ? `${current + 1} / ${playlist.video_count}` : `${playlist.video_count} videos`;
    const following = entries.slice(current + 1).find((e) => e.available);
    nextId = following ? following.video.id : null;
    next.disabled = nextId === null;
    replace(
      list,
      entries.map((entry, i) => {
        if (!entry.available) {
          return h("li", { class: "playlist-panel__item playlist-panel__item--unavailable" }, "Unavailable video");
        }
        const here = i === current;
        const link = h(
          "a",
          {
            class: "playlist-panel__link",
            href: watchInListUrl(entry.video.id, listId),
            "aria-current": here ? "true" : null,
          },
          h("span", { class: "playlist-panel__index" }, here ? "▶" : String(i + 1)),
          mediaBox(entry.video),
          h("span", { class: "playlist-panel__name" }, entry.video.title || "Untitled"),
        );
        return h("li", { class: `playlist-panel__item${here ? " playlist-panel__item--current" : ""}` }, link);
      }),
      cursor ? h("li", {}, h("a", { href: playlistUrl(listId) }, "See the whole playlist")) : null,
    );
    list.querySelector("[aria-current]")?.scrollIntoView({ block: "nearest" });
  })().catch((err) => {
    if (!ctx.isCurrent()) return;
    replace(list, h("li", { class: "form-error" }, err.status === 404 ? "This playlist is not available." : err.message));
  });
  return panel;
}

/** One playlist as a grid cell: its first visible video's thumbnail, count, title. */
export function playlistCard(playlist, { heading = "h3" } = {}) {
  const link = h("a", { class: "card__link", href: playlistUrl(playlist.id) });
  const media = mediaBox({ thumbnail_url: thumbnailOf(playlist) });
  media.append(h("span", { class: "badge badge--count" }, `${playlist.video_count} videos`));
  link.append(media, h(heading, { class: "card__title" }, playlist.title));
  return h(
    "li",
    { class: "card card--playlist", dataset: { playlistId: playlist.id } },
    link,
    h(
      "p",
      { class: "card__meta" },
      h("span", {}, "Playlist"),
      playlist.visibility !== "public" ? h("span", { class: `badge badge--${playlist.visibility}` }, visibilityLabel(playlist.visibility)) : null,
    ),
  );
}

/** An uploader's public playlists, for their page (/?owner=<id>); hidden when none. */
export function ownerPlaylists(ownerId, ctx) {
  const headingId = uid("owner-pl");
  const grid = h("ul", { class: "grid grid--compact" });
  const section = h(
    "section",
    { class: "owner-playlists", hidden: true, "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Playlists"),
    grid,
  );
  api
    .playlistsOf(ownerId)
    .then(({ items }) => {
      if (!ctx.isCurrent()) return;
      // Their own page shows them what others see: public lists only.
      const shown = items.filter((p) => p.visibility === "public");
      if (shown.length === 0) return;
      replace(grid, shown.map((p) => playlistCard(p)));
      section.hidden = false;
    })
    .catch(() => {
      // Only an addition to the uploader's videos.
    });
  return section;
}
