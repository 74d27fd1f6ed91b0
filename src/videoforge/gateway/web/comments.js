// The watch page's social parts: like/dislike buttons, the report dialog and the
// comments section (threads one level deep, newest/oldest, load more, replies, edits,
// deletes, and for the video's owner pins, the comment policy and the approval queue).
//
// Comments are plain text from strangers. They only ever reach the page as text nodes
// (dom.js's h() and textContent); URLs become <a> elements built here, http(s) only,
// with rel="nofollow ugc noopener". Nothing is parsed as HTML.
import * as api from "./api.js";
import { confirmDialog, h, replace, timeEl, toast, uid } from "./dom.js";

const TEXT_MAX = 2000;
const PAGE = 20;
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;
export const REPORT_REASONS = [
  ["spam", "Spam or misleading"],
  ["harassment", "Harassment or bullying"],
  ["hate", "Hateful content"],
  ["violence", "Violent or dangerous"],
  ["sexual", "Sexual content"],
  ["copyright", "Infringes my rights"],
  ["other", "Something else"],
];

/** Text with its http(s) URLs as links: an array of strings and <a> elements. */
export function linkify(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let raw = match[0];
    const trailing = raw.match(TRAILING);
    if (trailing) raw = raw.slice(0, raw.length - trailing[0].length);
    let url = null;
    try {
      url = new URL(raw);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
    parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: url.href, rel: "nofollow ugc noopener", target: "_blank" }, raw));
    last = match.index + raw.length;
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p !== "");
}

function countLabel(n, one, many) {
  const count = Number(n) || 0;
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

function needLogin(what) {
  const next = encodeURIComponent(window.location.pathname + window.location.search);
  toast(`Log in to ${what}.`, { kind: "info" });
  return next;
}

// ------------------------------------------------------------------- ratings
/** Like / dislike buttons with counts; the caller's own rating is pressed. */
export function ratingBar(video) {
  let state = { likes: Number(video.likes) || 0, dislikes: Number(video.dislikes) || 0, mine: video.my_rating ?? null };
  const likeCount = h("span", { class: "rating__count", "data-count": "likes" });
  const dislikeCount = h("span", { class: "rating__count", "data-count": "dislikes" });
  const like = h("button", { type: "button", class: "button button--ghost rating__button", "data-rating": "like" }, "Like ", likeCount);
  const dislike = h("button", { type: "button", class: "button button--ghost rating__button", "data-rating": "dislike" }, "Dislike ", dislikeCount);
  const paint = () => {
    likeCount.textContent = state.likes.toLocaleString();
    dislikeCount.textContent = state.dislikes.toLocaleString();
    like.setAttribute("aria-pressed", String(state.mine === "like"));
    dislike.setAttribute("aria-pressed", String(state.mine === "dislike"));
  };
  const choose = async (value) => {
    if (!api.user()) {
      needLogin("rate videos");
      return;
    }
    const wanted = state.mine === value ? "none" : value;
    like.disabled = true;
    dislike.disabled = true;
    try {
      const result = await api.rateVideo(video.id, wanted);
      state = { likes: result.likes, dislikes: result.dislikes, mine: result.my_rating ?? null };
      paint();
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      like.disabled = false;
      dislike.disabled = false;
    }
  };
  like.addEventListener("click", () => choose("like"));
  dislike.addEventListener("click", () => choose("dislike"));
  paint();
  return h("div", { class: "rating", role: "group", "aria-label": "Rate this video" }, like, dislike);
}

// ------------------------------------------------------------------- reports
/** A dialog asking why; sends the report. kind: "video" | "comment". */
export function reportDialog(kind, id) {
  if (!api.user()) {
    needLogin("report");
    return;
  }
  const titleId = uid("report");
  const reasonName = uid("reason");
  const noteId = uid("note");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const options = REPORT_REASONS.map(([value, label], i) =>
    h("label", { class: "report__reason" }, h("input", { type: "radio", name: reasonName, value, required: true, checked: i === 0 }), ` ${label}`),
  );
  const note = h("textarea", { id: noteId, maxlength: 1000, rows: 3, class: "report__note" });
  const submit = h("button", { type: "submit", class: "button button--danger" }, "Report");
  const form = h(
    "form",
    { class: "report-form" },
    h("h2", { id: titleId }, kind === "video" ? "Report this video" : "Report this comment"),
    h("fieldset", {}, h("legend", {}, "What is wrong with it?"), ...options),
    h("label", { for: noteId }, "Anything else the moderators should know (optional)"),
    note,
    error,
    h(
      "div",
      { class: "dialog__actions" },
      h("button", { type: "button", class: "button button--ghost", onclick: () => dialog.close() }, "Cancel"),
      submit,
    ),
  );
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = form.querySelector(`input[name="${reasonName}"]:checked`)?.value ?? "other";
    submit.disabled = true;
    try {
      await api.report(kind, id, { reason, note: note.value.trim() || null });
      dialog.close();
      toast("Thanks. The moderators will look at it.");
    } catch (err) {
      error.textContent = err.code === "already_reported" ? "You have already reported this." : err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

export function reportButton(kind, id, label = "Report") {
  return h("button", { type: "button", class: "button button--ghost", "data-action": "report", onclick: () => reportDialog(kind, id) }, label);
}

// ------------------------------------------------------------------- comments
function composer({ placeholder, submitLabel, initial = "", onSubmit, onCancel = null }) {
  const id = uid("comment");
  const box = h("textarea", { id, class: "composer__text", maxlength: TEXT_MAX, rows: 2, placeholder, required: true, "aria-label": placeholder });
  box.value = initial;
  const counter = h("span", { class: "composer__count", "aria-live": "polite" });
  const send = h("button", { type: "submit", class: "button button--primary" }, submitLabel);
  const updateCount = () => {
    const left = TEXT_MAX - box.value.length;
    counter.textContent = left < 200 ? `${left} characters left` : "";
    send.disabled = box.value.trim() === "";
  };
  box.addEventListener("input", updateCount);
  const form = h(
    "form",
    { class: "composer" },
    box,
    h(
      "div",
      { class: "composer__actions" },
      counter,
      onCancel ? h("button", { type: "button", class: "button button--ghost", onclick: onCancel }, "Cancel") : null,
      send,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text) return;
    send.disabled = true;
    try {
      await onSubmit(text);
      box.value = "";
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      updateCount();
    }
  });
  updateCount();
  return { form, focus: () => box.focus() };
}

/** The comments section of a watch page. */
export function commentsSection(video, ctx, { onCount = null } = {}) {
  const me = api.user();
  const isOwner = me !== null && String(me.id) === String(video.user_id);
  const canModerate = isOwner || Boolean(me?.is_admin);
  const headingId = uid("comments");
  const heading = h("h2", { id: headingId, class: "comments__title" });
  const list = h("ol", { class: "comment-list", "aria-labelledby": headingId });
  const more = h("button", { type: "button", class: "button button--ghost comments__more", hidden: true }, "Load more comments");
  const status = h("p", { class: "comments__status", role: "status" });
  const sortId = uid("sort");
  const sort = h(
    "select",
    { id: sortId },
    h("option", { value: "newest" }, "Newest first"),
    h("option", { value: "oldest" }, "Oldest first"),
  );
  let policy = video.comment_policy ?? "on";
  let count = Number(video.comments_count) || 0;
  let cursor = null;
  let loading = false;

  const paintCount = () => {
    heading.textContent = countLabel(count, "comment", "comments");
    onCount?.(count);
  };

  const top = h("div", { class: "comments__top" });
  const queueBox = h("section", { class: "comments__queue", hidden: true });

  const section = h(
    "section",
    { class: "comments", "aria-labelledby": headingId },
    h("div", { class: "comments__header" }, heading, h("div", { class: "comments__sort" }, h("label", { for: sortId }, "Sort"), sort)),
    top,
    queueBox,
    list,
    more,
    status,
  );

  function commentItem(comment, { reply = false, thread = null } = {}) {
    const mine = me !== null && String(me.id) === String(comment.author_id);
    const li = h("li", { class: `comment${reply ? " comment--reply" : ""}`, "data-comment-id": comment.id });
    const body = h("p", { class: "comment__text" });
    const edited = h("span", { class: "comment__edited" }, "(edited)");
    const paintBody = () => {
      if (comment.deleted) replace(body, h("em", {}, "Comment deleted"));
      else replace(body, linkify(comment.text ?? ""));
      edited.hidden = !comment.edited_at || comment.deleted;
    };
    paintBody();
    li.repaint = paintBody;
    const meta = h(
      "p",
      { class: "comment__meta" },
      h("span", { class: `comment__author${comment.by_owner ? " comment__author--owner" : ""}` }, comment.author_name),
      comment.by_owner ? h("span", { class: "badge" }, "Creator") : null,
      timeEl(comment.created_at),
      edited,
      comment.pinned ? h("span", { class: "badge badge--pinned" }, "Pinned") : null,
      comment.status === "held" ? h("span", { class: "badge badge--held" }, "Awaiting approval") : null,
    );
    const actions = h("div", { class: "comment__actions" });
    const replies = reply ? null : h("ol", { class: "comment-list comment-list--replies" });
    const replyArea = h("div", { class: "comment__reply" });
    li.append(meta, body, actions, replyArea);
    if (replies) li.append(replies);

    const button = (label, action, onclick, extra = "") =>
      h("button", { type: "button", class: `button button--ghost button--small ${extra}`.trim(), "data-action": action, onclick }, label);

    if (!comment.deleted) {
      if (me && policy !== "off" && comment.status === "approved") {
        actions.append(
          button("Reply", "reply", () => {
            const target = thread ?? { comment, repliesList: replies, li };
            openReply(target, reply ? `@${comment.author_name} ` : "", replyArea);
          }),
        );
      }
      if (mine) {
        actions.append(
          button("Edit", "edit", () => {
            const editor = composer({
              placeholder: "Edit your comment",
              submitLabel: "Save",
              initial: comment.text ?? "",
              onCancel: () => editor.form.replaceWith(body),
              onSubmit: async (text) => {
                const updated = await api.editComment(comment.id, text);
                Object.assign(comment, updated);
                paintBody();
                editor.form.replaceWith(body);
                if (updated.status === "held") toast("Your comment will show once the owner approves it.");
              },
            });
            body.replaceWith(editor.form);
            editor.focus();
          }),
        );
      }
      if (mine || canModerate) {
        actions.append(
          button("Delete", "delete", async () => {
            const ok = await confirmDialog({ title: "Delete this comment?", message: "This cannot be undone.", confirmLabel: "Delete", danger: true });
            if (!ok) return;
            try {
              await api.deleteComment(comment.id);
              if (comment.status === "approved") {
                count = Math.max(0, count - 1);
                paintCount();
              }
              // The server decides what stays: a thread with replies (held ones too)
              // as "Comment deleted", and a deleted thread goes with its last reply.
              await settleDeleted(comment, li, actions);
              if (reply && thread) {
                if (comment.status === "approved") thread.dropReply?.();
                if (thread.comment.deleted) await settleDeleted(thread.comment, thread.li, null);
              }
            } catch (err) {
              toast(err.message, { kind: "error" });
            }
          }, "button--danger-ghost"),
        );
      }
      if (isOwner && !reply && comment.status === "approved") {
        actions.append(
          button(comment.pinned ? "Unpin" : "Pin", comment.pinned ? "unpin" : "pin", async () => {
            try {
              await api.pinComment(comment.id, !comment.pinned);
              reload();
            } catch (err) {
              toast(err.message, { kind: "error" });
            }
          }),
        );
      }
      if (canModerate && comment.status === "held") {
        actions.append(
          button("Approve", "approve", () => review(comment, true)),
          button("Reject", "reject", () => review(comment, false), "button--danger-ghost"),
        );
      }
      if (me && !mine) actions.append(button("Report", "report", () => reportDialog("comment", comment.id)));
    }

    if (replies) {
      const threadRef = { comment, repliesList: replies, li };
      let repliesCursor = null;
      let opened = false;
      const toggle = h("button", { type: "button", class: "button button--link comment__toggle", "data-action": "replies", hidden: !(Number(comment.replies_count) > 0) });
      const moreReplies = h("button", { type: "button", class: "button button--link", hidden: true }, "Show more replies");
      const paintToggle = () => {
        toggle.textContent = opened ? "Hide replies" : `View ${countLabel(comment.replies_count, "reply", "replies")}`;
      };
      const loadReplies = async () => {
        try {
          const page = await api.listReplies(comment.id, { cursor: repliesCursor, limit: PAGE });
          for (const r of page.items) replies.append(commentItem(r, { reply: true, thread: threadRef }));
          repliesCursor = page.next_cursor;
          moreReplies.hidden = !repliesCursor;
        } catch (err) {
          toast(err.message, { kind: "error" });
        }
      };
      toggle.addEventListener("click", async () => {
        opened = !opened;
        paintToggle();
        replies.hidden = !opened;
        if (opened && replies.childElementCount === 0) await loadReplies();
      });
      moreReplies.addEventListener("click", loadReplies);
      threadRef.dropReply = () => {
        comment.replies_count = Math.max(0, Number(comment.replies_count || 0) - 1);
        paintToggle();
      };
      threadRef.showReply = (item) => {
        opened = true;
        replies.hidden = false;
        toggle.hidden = false;
        comment.replies_count = Number(comment.replies_count || 0) + (item.status === "approved" ? 1 : 0);
        paintToggle();
        replies.append(item);
      };
      paintToggle();
      replies.hidden = true;
      li.append(toggle, moreReplies);
      li.threadRef = threadRef;
    }
    return li;
  }

  /** After a delete: the comment as the server keeps it (a placeholder), or gone. */
  async function settleDeleted(comment, li, actions) {
    const kept = await api.getComment(comment.id);
    if (kept?.deleted) {
      Object.assign(comment, kept);
      li.repaint?.();
      actions?.replaceChildren();
    } else if (!kept) {
      li.remove();
    }
  }

  function openReply(thread, prefill, area) {
    if (area.firstChild) {
      area.replaceChildren();
      return;
    }
    const box = composer({
      placeholder: "Add a reply…",
      submitLabel: "Reply",
      initial: prefill,
      onCancel: () => area.replaceChildren(),
      onSubmit: async (text) => {
        const created = await api.postComment(video.id, { text, parentId: thread.comment.id });
        area.replaceChildren();
        afterPost(created);
        const owner = thread.li.threadRef ?? thread;
        owner.showReply?.(commentItem(created, { reply: true, thread: owner }));
      },
    });
    area.append(box.form);
    box.focus();
  }

  function afterPost(created) {
    if (created.status === "approved") {
      count += 1;
      paintCount();
    } else {
      toast("Your comment will show once the video's owner approves it.");
    }
  }

  async function review(comment, approve) {
    try {
      await api.reviewComment(comment.id, approve);
      toast(approve ? "Comment approved." : "Comment rejected.");
      if (approve) {
        count += 1;
        paintCount();
      }
      reload();
      loadQueue();
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  }

  async function loadPage() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    try {
      const page = await api.listComments(video.id, { sort: sort.value, cursor, limit: PAGE });
      if (!ctx.isCurrent()) return;
      policy = page.comment_policy;
      for (const c of page.items) {
        // One posted while this page was on its way is shown already (prepended).
        if (list.querySelector(`:scope > li[data-comment-id="${CSS.escape(String(c.id))}"]`)) continue;
        list.append(commentItem(c));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.childElementCount === 0 && !cursor
        ? policy === "off" ? "Comments are turned off." : "No comments yet."
        : "";
    } catch (err) {
      status.textContent = `Comments could not be loaded: ${err.message}`;
    } finally {
      loading = false;
      more.disabled = false;
    }
  }

  function reload() {
    list.replaceChildren();
    cursor = null;
    return loadPage();
  }

  async function loadQueue() {
    if (!canModerate) return;
    try {
      const page = await api.listComments(video.id, { status: "held", limit: 50 });
      const items = page.items.map((c) => commentItem(c, { reply: c.parent_id !== null }));
      queueBox.hidden = items.length === 0;
      replace(
        queueBox,
        h("h3", {}, `Held for review (${items.length}${page.next_cursor ? "+" : ""})`),
        h("ol", { class: "comment-list comment-list--queue" }, items),
      );
    } catch {
      queueBox.hidden = true;
    }
  }

  function paintTop() {
    top.replaceChildren();
    if (isOwner) {
      const policyId = uid("policy");
      const select = h(
        "select",
        { id: policyId, "data-field": "comment_policy" },
        h("option", { value: "on" }, "On"),
        h("option", { value: "held" }, "Hold all for my approval"),
        h("option", { value: "off" }, "Off"),
      );
      select.value = policy;
      select.addEventListener("change", async () => {
        try {
          const updated = await api.updateVideo(video.id, { comment_policy: select.value });
          policy = updated.comment_policy;
          toast("Comment setting saved.");
          paintTop();
          reload();
        } catch (err) {
          select.value = policy;
          toast(err.message, { kind: "error" });
        }
      });
      top.append(h("div", { class: "comments__policy" }, h("label", { for: policyId }, "Comments"), select));
    }
    if (policy === "off") {
      top.append(h("p", { class: "field__hint" }, "Comments are turned off."));
      return;
    }
    if (!me) {
      top.append(h("p", { class: "field__hint" }, h("a", { href: `/login?next=${encodeURIComponent(window.location.pathname)}` }, "Log in"), " to comment."));
      return;
    }
    const box = composer({
      placeholder: "Add a comment…",
      submitLabel: "Comment",
      onSubmit: async (text) => {
        const created = await api.postComment(video.id, { text });
        afterPost(created);
        const item = commentItem(created);
        const pinned = list.querySelector(".badge--pinned")?.closest(".comment");
        if (sort.value === "newest") {
          if (pinned && pinned.parentElement === list) pinned.after(item);
          else list.prepend(item);
        } else if (!cursor) {
          list.append(item);
        }
        status.textContent = "";
      },
    });
    top.append(box.form);
    if (policy === "held" && !isOwner) top.append(h("p", { class: "field__hint" }, "Comments on this video are reviewed by its owner before they show."));
  }

  sort.addEventListener("change", reload);
  more.addEventListener("click", loadPage);
  paintCount();
  paintTop();
  loadPage();
  loadQueue();
  return section;
}
