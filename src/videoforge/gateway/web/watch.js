// The watch page: player (shaka-player.js), chapters, details, share link, and owner actions.
import * as api from "./api.js";
import { confirmDialog, formatViews, h, replace, timeEl, toast, uid } from "./dom.js";
import { captionsDialog } from "./captions-dialog.js";
import { editVideoDialog, VISIBILITIES } from "./edit-dialog.js";
import { analyticsPanel } from "./analytics.js";
import { commentsSection, ratingBar, reportButton } from "./comments.js";
import { chapterList, mountPlayer } from "./shaka-player.js";
import { linkify } from "./linkify.js";
import { navigate } from "./router.js";
import { parseTime, shareBox } from "./share.js";
import { playlistPanel, saveActions } from "./playlists.js";
import { ownerLink, ownerOf, thumbnailOf, videoCard } from "./video-card.js";

const MORE_FROM_UPLOADER = 4;
// How often a page of a video still processing looks for news (playable, ready, failed).
const GROWING_POLL_MS = 2000;

function notFound(main) {
  document.title = "Video not found · VideoForge";
  main.append(
    h(
      "section",
      { class: "empty-state", "data-state": "not-found" },
      h("h1", {}, "Video not found"),
      h("p", {}, "This video does not exist, was deleted, or is private."),
      h("a", { class: "button button--primary", href: "/" }, "Browse videos"),
    ),
  );
}

/** "More from <uploader>": their newest other public videos, filled in when they arrive
 * (never in the way of playback); the section stays hidden when there are none. */
function moreFromUploader(video, ctx) {
  const name = ownerOf(video);
  const ownerId = video.user_id ?? null;
  if (!name || !ownerId) return null;
  const headingId = uid("more");
  const grid = h("ul", { class: "grid grid--compact" });
  const section = h(
    "section",
    { class: "more", hidden: true, "aria-labelledby": headingId },
    h("h2", { id: headingId, class: "more__title" }, `More from ${name}`),
    grid,
  );
  api
    .listVideos({ owner: ownerId, sort: "newest", per_page: MORE_FROM_UPLOADER + 1 })
    .then((page) => {
      if (!ctx.isCurrent()) return;
      const others = page.items.filter((v) => v.id !== video.id).slice(0, MORE_FROM_UPLOADER);
      if (others.length === 0) return;
      replace(grid, others.map((v) => videoCard(v, { heading: "h3" })));
      section.hidden = false;
    })
    .catch(() => {
      // Only a suggestion: without it the watch page is complete.
    });
  return section;
}

/** /watch/:id */
export async function watchView(main, { id }, query, ctx) {
  document.title = "Loading… · VideoForge";
  main.append(h("p", { class: "loading", role: "status" }, "Loading video…"));
  let video;
  try {
    video = await api.getVideo(id);
  } catch (err) {
    if (!ctx.isCurrent()) return;
    main.replaceChildren();
    if (err.status === 404 || err.status === 422 || err.status === 400) {
      notFound(main);
    } else {
      main.append(h("h1", {}, "Could not load this video"), h("p", { class: "form-error", role: "alert" }, err.message));
    }
    return;
  }
  if (!ctx.isCurrent()) return;
  main.replaceChildren();
  document.title = `${video.title || "Untitled"} · VideoForge`;
  const me = api.user();
  const isOwner = me !== null && String(me.id) === String(video.user_id ?? video.owner_id ?? video.owner?.id);

  const notice = h("p", { class: "notice", role: "status", "aria-live": "polite", hidden: true });
  const showNotice = (text) => {
    notice.textContent = text;
    notice.hidden = false;
  };
  // No native controls: shaka's UI draws them (quality, audio, captions, speed, ...).
  const videoEl = h("video", {
    class: "player__video",
    playsinline: true,
    preload: "metadata",
    poster: thumbnailOf(video) ?? undefined,
    "aria-label": `Video: ${video.title || "Untitled"}`,
  });
  const stage = h("div", { class: "player" }, videoEl);
  const viewsEl = h("span", { class: "views" }, formatViews(video.views));
  const commentsCountEl = h("span", { class: "watch__comments-count" });
  const showCommentsCount = (n) => {
    commentsCountEl.textContent = `${n.toLocaleString()} ${n === 1 ? "comment" : "comments"}`;
  };
  showCommentsCount(Number(video.comments_count) || 0);
  commentsCountEl.hidden = video.comment_policy === "off";
  const visLabel = VISIBILITIES.find(([v]) => v === video.visibility)?.[1];
  const titleEl = h("h1", { class: "watch__title" }, video.title || "Untitled");
  // Timestamps in the description seek the player (once it is there) and bring it into view.
  let seekTo = null;
  const onTime = (t) => {
    if (!seekTo) return;
    seekTo(t);
    stage.scrollIntoView({ block: "nearest", behavior: "smooth" });
  };
  const descEl = h("p", { class: "watch__description" }, linkify(video.description || "", { onTime, maxTime: Number(video.duration) || Infinity }));
  descEl.hidden = !video.description;

  const actions = isOwner
    ? h(
        "div",
        { class: "watch__actions" },
        h("button", {
          type: "button",
          class: "button button--ghost",
          onclick: async () => {
            const updated = await editVideoDialog(video);
            if (updated) {
              toast("Saved.");
              return navigate(`/watch/${encodeURIComponent(video.id)}`, { replace: true });
            }
            return null;
          },
        }, "Edit"),
        h("button", {
          type: "button",
          class: "button button--ghost",
          onclick: async () => {
            // The player reads the tracks at start: reload it to show the new ones.
            if (await captionsDialog(video)) return navigate(`/watch/${encodeURIComponent(video.id)}`, { replace: true });
            return null;
          },
        }, "Captions"),
        h("button", {
          type: "button",
          class: "button button--danger-ghost",
          onclick: async () => {
            const ok = await confirmDialog({
              title: "Delete this video?",
              message: `“${video.title || "Untitled"}” and all its files will be deleted. This cannot be undone.`,
              confirmLabel: "Delete",
              danger: true,
            });
            if (!ok) return;
            try {
              await api.deleteVideo(video.id);
              toast("Video deleted.");
              navigate("/my");
            } catch (err) {
              toast(err.message, { kind: "error" });
            }
          },
        }, "Delete"),
      )
    : null;

  const share = shareBox(video, { currentTime: () => videoEl.currentTime });
  for (const type of ["timeupdate", "seeked", "pause"]) videoEl.addEventListener(type, share.update);
  // Filled with the chapter list once the stream response names chapters.
  const chaptersSlot = h("div", { class: "watch__chapters" });
  main.append(
    h(
      "article",
      { class: "watch" },
      stage,
      notice,
      h(
        "div",
        { class: "watch__bar" },
        ratingBar(video),
        saveActions(video),
        me && !isOwner ? reportButton("video", video.id) : null,
        actions,
      ),
      chaptersSlot,
      titleEl,
      h(
        "p",
        { class: "watch__meta" },
        ownerLink(video, "watch__owner"),
        viewsEl,
        commentsCountEl,
        h("span", {}, timeEl(video.created_at)),
        visLabel && video.visibility !== "public" ? h("span", { class: `badge badge--${video.visibility}` }, visLabel) : null,
      ),
      descEl,
      share,
      isOwner && video.status === "ready" ? analyticsPanel(video.id) : null,
      commentsSection(video, ctx, { onCount: showCommentsCount }),
      moreFromUploader(video, ctx),
    ),
  );
  // Watched from a playlist (?list=): the list beside the player, "Next", autoplay-next.
  const listId = query.get("list");
  if (listId) {
    const article = main.querySelector("article.watch");
    const layout = h("div", { class: "watch-layout" });
    article.replaceWith(layout);
    layout.append(article, playlistPanel(listId, video, ctx, { videoEl }));
  }

  const growing = video.status === "processing" && video.playable;
  if (video.status !== "ready" && !growing) {
    stage.replaceChildren(
      h(
        "div",
        { class: "player__message", role: "status" },
        // Not every failure can be retried (a damaged file cannot): "My videos" says which.
        video.status === "failed"
          ? "Processing this video failed. Its owner can see why in “My videos”."
          : "This video is still being processed. It will play here as soon as it is ready.",
      ),
    );
    if (video.status === "failed") return;
    // Wait for processing to finish, or for its first segments to play (the job stores
    // them as it makes them), then show the player without a manual reload.
    const timer = setInterval(async () => {
      try {
        const fresh = await api.getVideo(video.id);
        if ((fresh.status !== video.status || fresh.playable) && ctx.isCurrent()) {
          clearInterval(timer);
          navigate(`/watch/${encodeURIComponent(video.id)}${window.location.search}`, { replace: true });
        }
      } catch {
        // Keep waiting; a deleted video shows "not found" on the next visit.
      }
    }, GROWING_POLL_MS);
    return () => clearInterval(timer);
  }

  let stream;
  try {
    stream = await api.streamUrls(video.id);
  } catch (err) {
    if (ctx.isCurrent()) showNotice(`Playback is unavailable: ${err.message}`);
    return;
  }
  if (!ctx.isCurrent()) return;

  // Count one view per page visit, once playback has really started.
  let counted = false;
  videoEl.addEventListener("playing", async () => {
    if (counted) return;
    counted = true;
    try {
      const result = await api.countView(video.id);
      // Repeat plays by the same viewer are not counted again; show what the server did.
      if (result?.counted !== false) {
        video.views = (Number(video.views) || 0) + 1;
        replace(viewsEl, formatViews(video.views));
      }
    } catch {
      // A lost view count must never interrupt playback.
    }
  });

  let chapters = null;
  const player = await mountPlayer(stage, videoEl, stream, {
    videoId: video.id,
    onNotice: showNotice,
    onTime: (t) => chapters?.markCurrent(t),
  });
  if (!ctx.isCurrent()) {
    player.destroy();
    return;
  }
  // A shared "link at current time" (?t=90, or 1m30s as YouTube writes it) starts there.
  const startAt = parseTime(query.get("t"));
  if (startAt > 0) player.seek(startAt);
  seekTo = (t) => player.seek(t);
  chapters = chapterList(stream.chapters, { onSeek: seekTo });
  if (chapters) chaptersSlot.append(chapters);
  if (!stream.partial) return () => player.destroy();

  // Still processing: the lowest quality plays while the rest is made. Once the video is
  // ready the full ladder takes over from where the viewer is; a job that failed or was
  // cancelled takes its stream down, and the page says so.
  showNotice("Still processing: playing a lower quality for now. Higher qualities are still coming.");
  notice.dataset.state = "growing";
  const timer = setInterval(async () => {
    let fresh;
    try {
      fresh = await api.getVideo(video.id);
    } catch {
      return; // keep playing what is there
    }
    if (!ctx.isCurrent() || fresh.status === "processing") return;
    clearInterval(timer);
    if (fresh.status !== "ready") {
      navigate(`/watch/${encodeURIComponent(video.id)}${window.location.search}`, { replace: true });
      return;
    }
    try {
      const full = await api.streamUrls(video.id);
      if (!ctx.isCurrent()) return;
      await player.reload(full);
      notice.hidden = true;
      delete notice.dataset.state;
    } catch (err) {
      if (ctx.isCurrent()) showNotice(`Playback is unavailable: ${err.message}`);
    }
  }, GROWING_POLL_MS);
  return () => {
    clearInterval(timer);
    player.destroy();
  };
}
