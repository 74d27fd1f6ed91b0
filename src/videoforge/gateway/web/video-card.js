// The video card used by the gallery grid, and small accessors that hide the exact field
// names of the gallery's video schema.
import { formatCount, formatDuration, formatViews, h, timeEl } from "./dom.js";

export const thumbnailOf = (v) => v.thumbnail_url ?? v.thumbnail ?? null;
export const previewOf = (v) => v.preview_url ?? v.preview ?? null;
export const ownerOf = (v) => v.owner_name ?? v.owner?.display_name ?? v.owner_display_name ?? null;

/** The uploader's name, linking to their public videos (the gallery filtered by owner). */
export function ownerLink(video, className) {
  const name = ownerOf(video);
  if (!name) return null;
  const id = video.user_id ?? video.owner_id ?? null;
  const label = id ? h("a", { class: "owner-link", href: `/?owner=${encodeURIComponent(id)}` }, name) : name;
  return h("span", { class: className }, label);
}

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

/** The thumbnail box: image (or a placeholder), duration badge; GIF preview on hover/focus. */
export function mediaBox(video, { hoverTarget = null } = {}) {
  const thumb = thumbnailOf(video);
  const preview = previewOf(video);
  const box = h("div", { class: "media" });
  if (thumb) {
    const img = h("img", { src: thumb, alt: "", loading: "lazy", decoding: "async" });
    img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
    box.append(img);
    if (preview && hoverTarget) {
      const show = () => {
        if (!reducedMotion.matches && img.isConnected) img.src = preview;
      };
      const hide = () => {
        if (img.isConnected) img.src = thumb;
      };
      hoverTarget.addEventListener("mouseenter", show);
      hoverTarget.addEventListener("focus", show);
      hoverTarget.addEventListener("mouseleave", hide);
      hoverTarget.addEventListener("blur", hide);
    }
  } else {
    box.append(placeholder());
  }
  const duration = formatDuration(video.duration);
  if (duration) box.append(h("span", { class: "badge badge--duration" }, duration));
  return box;
}

function placeholder() {
  return h("div", { class: "media__placeholder", "aria-hidden": "true" }, h("span", { class: "play-glyph" }));
}

/** One grid cell: a link to the watch page with title, owner, views, comments (when
 * there are any and they are not turned off) and date. The title is an h2 (a grid under the page's h1) unless
 * ``heading`` says otherwise. */
export function videoCard(video, { heading = "h2" } = {}) {
  const link = h("a", { class: "card__link", href: `/watch/${encodeURIComponent(video.id)}` });
  link.append(mediaBox(video, { hoverTarget: link }), h(heading, { class: "card__title" }, video.title || "Untitled"));
  return h(
    "li",
    { class: "card", dataset: { videoId: video.id } },
    link,
    h(
      "p",
      { class: "card__meta" },
      ownerLink(video, "card__owner"),
      h("span", {}, formatViews(video.views)),
      Number(video.comments_count) > 0 && video.comment_policy !== "off"
        ? h("span", { class: "card__comments" }, formatCount(video.comments_count, "comment", "comments"))
        : null,
      h("span", {}, timeEl(video.created_at)),
    ),
  );
}
