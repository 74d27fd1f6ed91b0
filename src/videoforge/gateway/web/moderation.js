// /moderation: the administrators' queue of reports, grouped by what they report, with
// the actions (dismiss, hide the video, delete the comment, block the author or the
// uploader), the blocked accounts (each with Unblock), and the log of what was done
// (both lists paged with "Show more"). Report notes and comments are strangers'
// text: shown through text nodes only.
import * as api from "./api.js";
import { confirmDialog, h, replace, timeEl, toast } from "./dom.js";
import { linkify, REPORT_REASONS } from "./comments.js";

const REASON_LABELS = Object.fromEntries(REPORT_REASONS);
const REPORTS_PAGE = 50;
const LOG_PAGE = 20;

function reasons(group) {
  return Object.entries(group.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${REASON_LABELS[reason] ?? reason} × ${n}`)
    .join(", ");
}

function groupCard(group, refresh) {
  const video = group.video;
  const comment = group.comment;
  const act = async (label, fn, confirm = null) => {
    if (confirm) {
      const ok = await confirmDialog({ title: confirm, message: "This is recorded in the moderation log.", confirmLabel: label, danger: true });
      if (!ok) return;
    }
    try {
      await fn();
      toast(`${label}: done.`);
      refresh();
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  };
  const button = (label, action, fn, { danger = false, confirm = null } = {}) =>
    h("button", { type: "button", class: `button ${danger ? "button--danger-ghost" : "button--ghost"}`, "data-action": action, onclick: () => act(label, fn, confirm) }, label);
  const actions = [button("Dismiss", "dismiss", () => api.dismissReports(group.target_type, group.target_id))];
  if (group.target_type === "video" && video) {
    actions.push(
      video.hidden
        ? button("Unhide video", "unhide", () => api.setVideoHidden(video.id, false))
        : button("Hide video", "hide", () => api.setVideoHidden(video.id, true), { danger: true, confirm: "Hide this video from everyone but its owner?" }),
      button("Block uploader from uploading", "block-upload", () => api.blockUser(video.user_id, "upload"), { danger: true, confirm: "Block this account from uploading?" }),
    );
  }
  if (group.target_type === "comment" && comment) {
    if (!comment.deleted) actions.push(button("Delete comment", "delete-comment", () => api.moderatorDeleteComment(comment.id), { danger: true, confirm: "Delete this comment?" }));
    actions.push(button("Block author from commenting", "block-comment", () => api.blockUser(comment.author_id, "comment"), { danger: true, confirm: "Block this account from commenting?" }));
  }
  const watch = video ? h("a", { href: `/watch/${encodeURIComponent(video.id)}` }, video.title || "Untitled") : h("span", {}, "(video gone)");
  return h(
    "li",
    { class: "report-card", "data-target-type": group.target_type, "data-target-id": group.target_id },
    h(
      "p",
      { class: "report-card__head" },
      h("span", { class: "badge" }, group.target_type === "video" ? "Video" : "Comment"),
      h("strong", { class: "report-card__count" }, `${group.count} ${group.count === 1 ? "report" : "reports"}`),
      " · last ",
      timeEl(group.last_reported_at),
      video?.hidden ? h("span", { class: "badge badge--held" }, "Hidden") : null,
    ),
    h("p", { class: "report-card__reasons" }, reasons(group)),
    group.target_type === "comment" && comment
      ? h(
          "blockquote",
          { class: "report-card__comment" },
          h("p", { class: "comment__meta" }, h("span", { class: "comment__author" }, comment.author_name), ` on `, watch),
          h("p", { class: "comment__text" }, comment.deleted ? h("em", {}, "Comment deleted") : linkify(comment.text ?? "")),
        )
      : h("p", {}, watch, video ? ` by ${video.owner_name ?? video.user_id}` : null),
    group.notes.length ? h("ul", { class: "report-card__notes" }, group.notes.map((n) => h("li", {}, n))) : null,
    h("div", { class: "report-card__actions" }, actions),
  );
}

const BLOCK_SCOPES = { comment: "commenting", upload: "uploading" };

function blockList(blocks, refresh) {
  const unblock = async (block) => {
    const what = BLOCK_SCOPES[block.scope] ?? block.scope;
    const ok = await confirmDialog({ title: `Let this account resume ${what}?`, message: "This is recorded in the moderation log.", confirmLabel: "Unblock" });
    if (!ok) return;
    try {
      await api.unblockUser(block.user_id, block.scope);
      toast("Unblocked.");
      refresh();
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  };
  return h(
    "ul",
    { class: "block-list" },
    blocks.map((b) =>
      h(
        "li",
        { class: "block-list__item", "data-user-id": b.user_id, "data-scope": b.scope },
        h("strong", {}, b.user_id),
        ` blocked from ${BLOCK_SCOPES[b.scope] ?? b.scope} by ${b.created_by} `,
        timeEl(b.created_at),
        b.reason ? ` — ${b.reason}` : "",
        " ",
        h("button", { type: "button", class: "button button--ghost button--small", "data-action": "unblock", onclick: () => unblock(b) }, "Unblock"),
      ),
    ),
  );
}

function logEntry(e) {
  return h(
    "li",
    {},
    timeEl(e.created_at),
    " ",
    h("strong", {}, e.action.replaceAll("_", " ")),
    ` ${e.target_type} ${e.target_id} by ${e.actor_id}`,
    e.note ? ` — ${e.note}` : "",
  );
}

/** A "Show more" button that appends the next page (``load(): {items, more}``) to a list. */
function moreButton(label, list, render, load) {
  const button = h("button", { type: "button", class: "button button--ghost", hidden: true }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { items, more } = await load();
      list.append(...items.map(render));
      button.hidden = !more;
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** /moderation (admins only). */
export async function moderationView(main, _params, _query, ctx) {
  document.title = "Moderation · VideoForge";
  const me = api.user();
  if (!me || !me.is_admin) {
    main.append(h("h1", {}, "Moderation"), h("p", { class: "notice" }, "Only administrators can see this page."));
    return;
  }
  const queue = h("ol", { class: "report-list", "aria-label": "Reported videos and comments" });
  const status = h("p", { role: "status", class: "comments__status" });
  const blocks = h("section", { class: "moderation__blocks" }, h("h2", {}, "Blocked accounts"));
  const logList = h("ol", { class: "moderation-log" });
  const logEmpty = h("p", {}, "Nothing yet.");
  // Pages after the first, until the next refresh (every action refreshes from page 1).
  let reportPage = 1;
  let logCursor = null;
  const moreReports = moreButton("Show more reports", queue, (g) => groupCard(g, refresh), async () => {
    const page = await api.moderationReports({ page: reportPage + 1, perPage: REPORTS_PAGE });
    reportPage += 1;
    return { items: page.items, more: page.has_more };
  });
  const olderActions = moreButton("Show older actions", logList, logEntry, async () => {
    const page = await api.moderationActions({ cursor: logCursor, limit: LOG_PAGE });
    logCursor = page.next_cursor;
    return { items: page.items, more: Boolean(logCursor) };
  });
  const log = h("section", { class: "moderation__log" }, h("h2", {}, "Recent actions"), logEmpty, logList, olderActions);
  main.append(h("h1", {}, "Moderation"), h("h2", {}, "Open reports"), status, queue, moreReports, blocks, log);

  async function refresh() {
    try {
      const [page, blocked, actions] = await Promise.all([
        api.moderationReports({ perPage: REPORTS_PAGE }),
        api.moderationBlocks(),
        api.moderationActions({ limit: LOG_PAGE }),
      ]);
      if (!ctx.isCurrent()) return;
      reportPage = 1;
      replace(queue, page.items.map((g) => groupCard(g, refresh)));
      moreReports.hidden = !page.has_more;
      status.textContent = page.items.length ? "" : "No open reports. All clear.";
      replace(blocks, h("h2", {}, "Blocked accounts"), blocked.items.length ? blockList(blocked.items, refresh) : h("p", {}, "Nobody is blocked."));
      logCursor = actions.next_cursor;
      replace(logList, actions.items.map(logEntry));
      logEmpty.hidden = actions.items.length > 0;
      olderActions.hidden = !logCursor;
    } catch (err) {
      status.textContent = `Could not load reports: ${err.message}`;
    }
  }
  await refresh();
}
