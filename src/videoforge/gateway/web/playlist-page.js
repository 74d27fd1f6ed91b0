// The playlist pages: /playlist/:id (the videos in order; for its owner also edit,
// delete, reorder with up/down and remove) and /playlists ("My playlists": create,
// rename, delete).
import * as api from "./api.js";
import { confirmDialog, formatDuration, h, replace, toast } from "./dom.js";
import { linkify } from "./linkify.js";
import { playlistCard, playlistDialog, playlistUrl, visibilityLabel, watchInListUrl } from "./playlists.js";
import { navigate } from "./router.js";
import { mediaBox } from "./video-card.js";

const PAGE = 50;

function notFound(main) {
  document.title = "Playlist not found · VideoForge";
  main.append(
    h(
      "section",
      { class: "empty-state", "data-state": "not-found" },
      h("h1", {}, "Playlist not found"),
      h("p", {}, "This playlist does not exist, was deleted, or is private."),
      h("a", { class: "button button--primary", href: "/" }, "Browse videos"),
    ),
  );
}

async function deletePlaylist(playlist) {
  const ok = await confirmDialog({
    title: "Delete this playlist?",
    message: `“${playlist.title}” will be deleted. The videos in it stay.`,
    confirmLabel: "Delete",
    danger: true,
  });
  if (!ok) return false;
  try {
    await api.deletePlaylist(playlist.id);
    toast("Playlist deleted.");
    return true;
  } catch (err) {
    toast(err.message, { kind: "error" });
    return false;
  }
}

/** /playlist/:id */
export async function playlistView(main, { id }, _query, ctx) {
  document.title = "Loading… · VideoForge";
  main.append(h("p", { class: "loading", role: "status" }, "Loading playlist…"));
  let first;
  try {
    first = await api.playlistVideos(id, { limit: PAGE });
  } catch (err) {
    if (!ctx.isCurrent()) return;
    main.replaceChildren();
    if (err.status === 404 || err.status === 400 || err.status === 422) notFound(main);
    else main.append(h("h1", {}, "Could not load this playlist"), h("p", { class: "form-error", role: "alert" }, err.message));
    return;
  }
  if (!ctx.isCurrent()) return;
  main.replaceChildren();
  let playlist = first.playlist;
  const me = api.user();
  const mine = me !== null && String(me.id) === String(playlist.user_id);
  const fixed = playlist.kind === "watch_later";
  document.title = `${playlist.title} · VideoForge`;

  const heading = h("h1", { class: "playlist__title" }, playlist.title);
  // Its description as text, with http(s) links clickable (as a video's).
  const desc = h("p", { class: "playlist__description" }, linkify(playlist.description || ""));
  desc.hidden = !playlist.description;
  const count = h("span", {}, `${playlist.video_count} ${playlist.video_count === 1 ? "video" : "videos"}`);
  const visBadge = h("span", { class: `badge badge--${playlist.visibility}` }, visibilityLabel(playlist.visibility));
  visBadge.hidden = playlist.visibility === "public";
  const list = h("ol", { class: "playlist__items", "aria-label": "Videos in this playlist" });
  const more = h("button", { type: "button", class: "button button--ghost", hidden: true }, "Show more");
  const playAll = h("a", { class: "button button--primary", hidden: true }, "▶ Play all");
  const showHead = () => {
    heading.textContent = playlist.title;
    replace(desc, linkify(playlist.description || ""));
    desc.hidden = !playlist.description;
    visBadge.textContent = visibilityLabel(playlist.visibility);
    visBadge.className = `badge badge--${playlist.visibility}`;
    visBadge.hidden = playlist.visibility === "public";
    document.title = `${playlist.title} · VideoForge`;
  };
  const showCount = () => {
    const n = list.querySelectorAll("li.playlist-item").length;
    count.textContent = `${Math.max(n, playlist.video_count)} ${playlist.video_count === 1 ? "video" : "videos"}`;
  };
  const setPlayAll = () => {
    const firstOk = list.querySelector("li.playlist-item[data-video-id][data-available='true']");
    playAll.hidden = !firstOk;
    if (firstOk) playAll.href = watchInListUrl(firstOk.dataset.videoId, playlist.id);
  };

  const ownerActions = mine
    ? h(
        "div",
        { class: "playlist__actions" },
        fixed
          ? null
          : h("button", {
              type: "button",
              class: "button button--ghost",
              onclick: async () => {
                const saved = await playlistDialog({ playlist });
                if (saved) {
                  playlist = { ...playlist, ...saved };
                  showHead();
                  toast("Saved.");
                }
              },
            }, "Edit"),
        fixed
          ? null
          : h("button", {
              type: "button",
              class: "button button--danger-ghost",
              onclick: async () => {
                if (await deletePlaylist(playlist)) navigate("/playlists");
              },
            }, "Delete playlist"),
      )
    : null;

  const renumber = () => {
    list.querySelectorAll("li.playlist-item").forEach((li, i) => {
      li.dataset.position = String(i);
      const index = li.querySelector(".playlist-item__index");
      if (index) index.textContent = String(i + 1);
      const up = li.querySelector('[data-action="up"]');
      const down = li.querySelector('[data-action="down"]');
      if (up) up.disabled = i === 0;
      if (down) down.disabled = li.nextElementSibling === null && !cursor;
    });
  };

  async function move(li, delta) {
    const from = Number(li.dataset.position);
    const to = from + delta;
    const sibling = delta < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (to < 0 || !sibling) return;
    try {
      await api.movePlaylistVideo(playlist.id, li.dataset.videoId, to);
    } catch (err) {
      toast(err.message, { kind: "error" });
      return;
    }
    if (delta < 0) sibling.before(li);
    else sibling.after(li);
    renumber();
    setPlayAll();
    li.querySelector(`[data-action="${delta < 0 ? "up" : "down"}"]`)?.focus();
  }

  async function remove(li) {
    try {
      await api.removeFromPlaylist(playlist.id, li.dataset.videoId);
    } catch (err) {
      toast(err.message, { kind: "error" });
      return;
    }
    li.remove();
    playlist = { ...playlist, video_count: playlist.video_count - 1 };
    renumber();
    showCount();
    setPlayAll();
    toast("Removed from the playlist.");
  }

  const row = (entry) => {
    const li = h("li", {
      class: `playlist-item${entry.available ? "" : " playlist-item--unavailable"}`,
      dataset: {
        position: String(entry.position),
        available: String(entry.available),
        ...(entry.video_id ? { videoId: entry.video_id } : {}),
      },
    });
    const index = h("span", { class: "playlist-item__index" }, String(entry.position + 1));
    if (entry.available) {
      const v = entry.video;
      li.append(
        index,
        h(
          "a",
          { class: "playlist-item__link", href: watchInListUrl(v.id, playlist.id) },
          mediaBox(v),
          h(
            "span",
            { class: "playlist-item__text" },
            h("span", { class: "playlist-item__title" }, v.title || "Untitled"),
            h("span", { class: "playlist-item__meta" }, [v.owner_name, formatDuration(v.duration)].filter(Boolean).join(" · ")),
          ),
        ),
      );
    } else {
      li.append(
        index,
        h(
          "span",
          { class: "playlist-item__link" },
          h("span", { class: "media media--unavailable", "aria-hidden": "true" }),
          h("span", { class: "playlist-item__text" }, h("span", { class: "playlist-item__title" }, "Unavailable video")),
        ),
      );
    }
    if (mine && entry.video_id) {
      const label = entry.available ? entry.video.title || "Untitled" : "unavailable video";
      li.append(
        h(
          "span",
          { class: "playlist-item__tools" },
          h("button", { type: "button", class: "button button--ghost button--small", "data-action": "up", "aria-label": `Move “${label}” up`, onclick: () => move(li, -1) }, "↑"),
          h("button", { type: "button", class: "button button--ghost button--small", "data-action": "down", "aria-label": `Move “${label}” down`, onclick: () => move(li, +1) }, "↓"),
          h("button", { type: "button", class: "button button--danger-ghost button--small", "data-action": "remove", "aria-label": `Remove “${label}” from the playlist`, onclick: () => remove(li) }, "Remove"),
        ),
      );
    }
    return li;
  };

  let cursor = first.next_cursor;
  list.append(...first.items.map(row));
  more.hidden = !cursor;
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api.playlistVideos(playlist.id, { cursor, limit: PAGE });
      if (!ctx.isCurrent()) return;
      list.append(...page.items.map(row));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      renumber();
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      more.disabled = false;
    }
  });
  renumber();
  setPlayAll();

  const owner = playlist.user_id
    ? h("a", { class: "owner-link", href: `/?owner=${encodeURIComponent(playlist.user_id)}` }, playlist.owner_name)
    : playlist.owner_name;
  main.append(
    h(
      "article",
      { class: "playlist", dataset: { playlistId: playlist.id } },
      h("section", { class: "page-head playlist__head" }, heading, ownerActions),
      h("p", { class: "playlist__meta" }, h("span", {}, owner), count, visBadge),
      desc,
      h("p", {}, playAll),
      first.items.length === 0
        ? h("p", { class: "empty-state" }, mine ? "No videos yet. Use “Save” on a video’s page to add it here." : "This playlist has no videos yet.")
        : null,
      list,
      more,
    ),
  );
}

/** /playlists — the signed-in user's playlists. */
export async function myPlaylistsView(main, _params, _query, ctx) {
  document.title = "My playlists · VideoForge";
  if (!api.user()) {
    navigate(`/login?next=${encodeURIComponent("/playlists")}`, { replace: true });
    return;
  }
  const grid = h("ul", { class: "grid grid--compact my-playlists", "aria-label": "My playlists" });
  const status = h("p", { class: "results-status", role: "status", "aria-live": "polite" });
  const create = h("button", { type: "button", class: "button button--primary" }, "New playlist");
  main.append(h("section", { class: "page-head" }, h("h1", {}, "My playlists"), create), status, grid);

  const cell = (playlist) => {
    const li = playlistCard(playlist, { heading: "h2" });
    if (playlist.kind !== "watch_later") {
      li.append(
        h(
          "p",
          { class: "card__tools" },
          h("button", {
            type: "button",
            class: "button button--ghost button--small",
            "aria-label": `Rename “${playlist.title}”`,
            onclick: async () => {
              const saved = await playlistDialog({ playlist });
              if (saved) {
                li.replaceWith(cell({ ...playlist, ...saved }));
                toast("Saved.");
              }
            },
          }, "Rename"),
          h("button", {
            type: "button",
            class: "button button--danger-ghost button--small",
            "aria-label": `Delete “${playlist.title}”`,
            onclick: async () => {
              if (await deletePlaylist(playlist)) li.remove();
            },
          }, "Delete"),
        ),
      );
    }
    return li;
  };

  async function load() {
    status.textContent = "Loading your playlists…";
    try {
      const { items } = await api.myPlaylists();
      if (!ctx.isCurrent()) return;
      replace(grid, items.map(cell));
      status.textContent = items.length === 1 ? "Make a playlist to collect videos in the order you like." : "";
    } catch (err) {
      if (ctx.isCurrent()) status.textContent = `Could not load your playlists: ${err.message}`;
    }
  }
  create.addEventListener("click", async () => {
    const made = await playlistDialog();
    if (made) {
      toast("Playlist created.");
      navigate(playlistUrl(made.id));
    }
  });
  await load();
}
