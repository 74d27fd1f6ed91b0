// "My videos": the upload panel (upload-panel.js) and the caller's videos with live
// processing status, retry/cancel, edit and delete.
import * as api from "./api.js";
import { confirmDialog, formatDuration, formatViews, h, replace, timeEl, toast, uid } from "./dom.js";
import { captionsDialog } from "./captions-dialog.js";
import { editVideoDialog, VISIBILITIES } from "./edit-dialog.js";
import { describeJob, describeVideoWithoutJob } from "./job-status.js";
import { isFinal, watchJob } from "./jobs-live.js";
import { navigate } from "./router.js";
import { publishBadge } from "./upload-details.js";
import { uploadPanel } from "./upload-panel.js";
import { mediaBox } from "./video-card.js";

const PER_PAGE = 20;

// Where focus goes when the pressed action disappears from a rebuilt row.
const FOCUS_COUNTERPART = { cancel: "retry", retry: "cancel", process: "cancel" };

/** What a row shows. While a video has a job, the job alone says how processing
 * goes (job-status.js explains why); the gallery's status speaks only for a video
 * without a known job. The two are never merged. */
function describe(video, job) {
  const d = job ? describeJob(job) : describeVideoWithoutJob(video);
  // The row's coarse state (data-status, badge colour): every live phase is "processing".
  const status = ["ready", "failed", "cancelled", "uploaded"].includes(d.phase) ? d.phase : "processing";
  return { ...d, status };
}

// ------------------------------------------------------------------ video list
/** /my */
export async function myVideosView(main, _params, query, ctx) {
  if (!api.user()) {
    navigate(`/login?next=${encodeURIComponent("/my")}`, { replace: true });
    return;
  }
  document.title = "My videos · VideoForge";
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const videos = new Map();
  const jobs = new Map(); // video id -> newest job
  const watchers = new Map(); // job id -> stop()
  const pollers = new Map(); // video id -> timer
  const rows = new Map();

  const list = h("ul", { class: "video-list", "aria-label": "Your videos" });
  const status = h("p", { class: "results-status", role: "status", "aria-live": "polite" }, "Loading your videos…");
  const pager = h("nav", { class: "pager", "aria-label": "Pagination" });

  const onUploaded = (video, job) => {
    if (!video) return;
    videos.set(video.id, video);
    if (job) jobs.set(video.id, job);
    if (rows.has(video.id)) {
      refreshRow(video.id); // confirming is idempotent: the same video may come back
    } else {
      list.prepend(buildRow(video));
    }
    status.textContent = "";
    follow(video);
  };
  const panel = uploadPanel(onUploaded);

  main.append(
    h("h1", {}, "My videos"),
    panel.section,
    h("section", { class: "panel", "aria-labelledby": "videos-heading" }, h("div", { class: "panel__head" }, h("h2", { id: "videos-heading" }, "Your videos")), status, list, pager),
  );

  // -- rows -------------------------------------------------------------------
  function buildRow(video) {
    const job = jobs.get(video.id);
    const d = describe(video, job);
    const watchHref = `/watch/${encodeURIComponent(video.id)}`;
    const vis = VISIBILITIES.find(([v]) => v === video.visibility);
    const progressId = uid("prog");
    const actions = [];
    if (d.status === "ready") actions.push(h("a", { class: "button button--small", href: watchHref, dataset: { action: "watch" } }, "Watch"));
    if (job && !isFinal(job.status) && !d.cancelling) {
      actions.push(h("button", { type: "button", class: "button button--small button--ghost", dataset: { action: "cancel" }, onclick: () => jobAction(video, "cancel") }, "Cancel"));
    } else if (job && d.retryable) {
      // Only where another run can succeed: never for media or a link refused for good.
      actions.push(h("button", { type: "button", class: "button button--small", dataset: { action: "retry" }, onclick: () => jobAction(video, "retry") }, "Retry"));
    } else if (d.status === "uploaded") {
      actions.push(h("button", { type: "button", class: "button button--small", dataset: { action: "process" }, onclick: () => jobAction(video, "start") }, "Start processing"));
    }
    if (["draft", "scheduled"].includes(video.publish_state)) {
      actions.push(h("button", { type: "button", class: "button button--small", dataset: { action: "publish" }, onclick: () => publishNow(video) }, "Publish now"));
    }
    actions.push(h("button", { type: "button", class: "button button--small button--ghost", dataset: { action: "edit" }, onclick: () => edit(video) }, "Edit"));
    actions.push(h("button", { type: "button", class: "button button--small button--ghost", dataset: { action: "captions" }, onclick: () => captions(video) }, "Captions"));
    actions.push(h("button", { type: "button", class: "button button--small button--danger-ghost", dataset: { action: "delete" }, onclick: () => remove(video) }, "Delete"));

    const li = h(
      "li",
      { class: "video-row", dataset: { videoId: video.id, status: d.status } },
      d.status === "ready"
        ? h("a", { href: watchHref, class: "video-row__media", tabindex: "-1", "aria-hidden": "true" }, mediaBox(video))
        : h("div", { class: "video-row__media" }, mediaBox(video)),
      h(
        "div",
        { class: "video-row__body" },
        h("h3", { class: "video-row__title" }, d.status === "ready" ? h("a", { href: watchHref }, video.title || "Untitled") : video.title || "Untitled"),
        h(
          "p",
          { class: "video-row__meta" },
          h("span", { class: `badge badge--status badge--${d.status}` }, d.label),
          d.detail ? h("span", { class: "video-row__detail" }, d.detail) : null,
          vis ? h("span", { class: `badge badge--${video.visibility}` }, vis[1]) : null,
          publishBadge(video),
          video.duration ? h("span", {}, formatDuration(video.duration)) : null,
          h("span", {}, formatViews(video.views)),
          h("span", {}, "Added ", timeEl(video.created_at)),
        ),
        d.progress !== null
          ? h(
              "div",
              { class: "video-row__progress" },
              h("label", { for: progressId, class: "visually-hidden" }, `Processing progress of ${video.title}`),
              h("progress", { id: progressId, max: 100, value: d.progress }),
              h("span", { class: "upload__pct" }, `${d.progress}%`),
            )
          : null,
        d.error ? h("p", { class: "form-error" }, d.error) : null,
        h("div", { class: "video-row__actions" }, actions),
      ),
    );
    rows.set(video.id, li);
    return li;
  }

  function refreshRow(videoId) {
    const old = rows.get(videoId);
    const video = videos.get(videoId);
    if (!old || !video || !ctx.isCurrent()) return;
    const hadFocus = old.contains(document.activeElement);
    const focusedAction = hadFocus ? document.activeElement?.dataset?.action : null;
    const row = buildRow(video);
    old.replaceWith(row);
    if (hadFocus) {
      // Keep keyboard users in the row when the button they pressed is replaced (Cancel
      // becomes Retry and back): the same action, its counterpart, else the first one.
      const target =
        row.querySelector(`[data-action="${focusedAction}"]`) ??
        row.querySelector(`[data-action="${FOCUS_COUNTERPART[focusedAction]}"]`) ??
        row.querySelector(".video-row__actions [data-action]");
      target?.focus();
    }
  }

  // -- live status --------------------------------------------------------------
  function follow(video) {
    const job = jobs.get(video.id);
    if (job && !isFinal(job.status) && !watchers.has(job.id)) {
      const stop = watchJob(job.id, (update) => {
        if (jobs.get(video.id)?.id !== job.id) return; // the video has moved on to a newer job
        const merged = { ...jobs.get(video.id), ...update };
        jobs.set(video.id, merged);
        refreshRow(video.id);
        if (isFinal(merged.status)) {
          watchers.delete(job.id);
          settle(video.id);
        }
      });
      watchers.set(job.id, stop);
    } else if (video.status === "processing" || (job && isFinal(job.status) && video.status !== "ready" && video.status !== "failed" && job.status !== "CANCELLED")) {
      settle(video.id);
    }
  }

  // The gallery applies job events asynchronously: after a job ends, poll the video until
  // it catches up, briefly, for what only the gallery has (thumbnail, duration). The
  // status shown stays the job's.
  function settle(videoId, attempt = 0) {
    clearTimeout(pollers.get(videoId));
    const delay = attempt < 10 ? 1000 : 3000;
    pollers.set(
      videoId,
      setTimeout(async () => {
        if (!ctx.isCurrent()) return;
        try {
          const fresh = await api.getVideo(videoId);
          videos.set(videoId, fresh);
          refreshRow(videoId);
          const job = jobs.get(videoId);
          const jobDone = !job || isFinal(job.status);
          if ((fresh.status === "ready" || fresh.status === "failed") && jobDone) return;
          if (job && String(job.status).toUpperCase() === "CANCELLED") return;
        } catch (err) {
          if (err.status === 404) return;
        }
        if (attempt < 60) settle(videoId, attempt + 1);
      }, delay),
    );
  }

  // -- actions ---------------------------------------------------------------------
  async function jobAction(video, kind) {
    try {
      const job = jobs.get(video.id);
      let updated;
      if (kind === "cancel") updated = await api.cancelJob(job.id);
      else if (kind === "retry" && job) updated = await api.retryJob(job.id);
      else updated = await api.createJob(video.id);
      if (kind !== "cancel" && job) {
        // A new run: an answer about the earlier run still on its way (a late poll or
        // event saying "CANCELLED") must not land on it, so follow it afresh.
        watchers.get(job.id)?.();
        watchers.delete(job.id);
      }
      jobs.set(video.id, updated);
      refreshRow(video.id);
      follow(videos.get(video.id));
      toast(kind === "cancel" ? "Cancelling…" : "Processing started.");
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  }

  async function edit(video) {
    const updated = await editVideoDialog(videos.get(video.id));
    if (updated) {
      videos.set(video.id, updated);
      refreshRow(video.id);
      toast("Saved.");
    }
    rows.get(video.id)?.querySelector('[data-action="edit"]')?.focus();
  }

  async function captions(video) {
    await captionsDialog(videos.get(video.id));
    rows.get(video.id)?.querySelector('[data-action="captions"]')?.focus();
  }

  async function publishNow(video) {
    try {
      const updated = await api.updateVideo(video.id, { publish: "now" });
      videos.set(video.id, updated);
      refreshRow(video.id);
      toast("Published.");
      rows.get(video.id)?.querySelector('[data-action="edit"]')?.focus();
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  }

  async function remove(video) {
    const ok = await confirmDialog({
      title: "Delete this video?",
      message: `“${video.title || "Untitled"}” and all its files will be deleted. This cannot be undone.`,
      confirmLabel: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      const job = jobs.get(video.id);
      if (job && !isFinal(job.status)) await api.cancelJob(job.id).catch(() => {});
      await api.deleteVideo(video.id);
      rows.get(video.id)?.remove();
      rows.delete(video.id);
      videos.delete(video.id);
      toast("Video deleted.");
      if (videos.size === 0) status.textContent = "You have no videos yet. Upload one above.";
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  }

  // -- load ------------------------------------------------------------------------
  try {
    const [result, jobList] = await Promise.all([
      api.listVideos({ owner: "me", sort: "newest", page, per_page: PER_PAGE }),
      api.listJobs().catch(() => []),
    ]);
    if (!ctx.isCurrent()) return () => {};
    for (const job of jobList) {
      // Newest first: keep the first job seen for each video.
      if (job.video_id && !jobs.has(job.video_id)) jobs.set(job.video_id, job);
    }
    replace(list);
    for (const video of result.items) {
      videos.set(video.id, video);
      list.append(buildRow(video));
      follow(video);
    }
    status.textContent = result.items.length ? "" : page > 1 ? "No videos on this page." : "You have no videos yet. Upload one above.";
    if (result.items.length === 0 && result.pages && page > result.pages) {
      // Past the last page (a stale link): say so and link the last one, rather than a
      // pager reading "Page 9 of 2".
      status.textContent = `There is no page ${page}. `;
      status.append(h("a", { href: `/my?page=${result.pages}` }, `Go to page ${result.pages}`));
    } else if (page > 1 || result.hasNext) {
      pager.append(
        page > 1 ? h("a", { class: "button button--ghost", href: `/my?page=${page - 1}`, rel: "prev" }, "← Previous") : h("span", { class: "button button--ghost", "aria-disabled": "true" }, "← Previous"),
        h("span", { class: "pager__label" }, result.pages ? `Page ${page} of ${result.pages}` : `Page ${page}`),
        result.hasNext ? h("a", { class: "button button--ghost", href: `/my?page=${page + 1}`, rel: "next" }, "Next →") : h("span", { class: "button button--ghost", "aria-disabled": "true" }, "Next →"),
      );
    }
  } catch (err) {
    if (ctx.isCurrent()) {
      status.textContent = "";
      status.append(h("span", { class: "form-error" }, `Could not load your videos: ${err.message}`));
    }
  }

  return () => {
    panel.dispose();
    for (const stop of watchers.values()) stop();
    for (const timer of pollers.values()) clearTimeout(timer);
  };
}
