"""The HTML the gateway renders itself: the embed page, the watch page's link-preview
tags (Open Graph, Twitter card) and the embed code, every value escaped; and the URLs
of a video on this site, all built from the ``PUBLIC_URL`` base passed in."""

from __future__ import annotations

import html
import uuid
from urllib.parse import quote

from videoforge.gateway.embed.options import EmbedOptions, Size, aspect_of, fit, thumbnail_size
from videoforge.gateway.gallery.client import PublicVideo

IFRAME_ALLOW = "autoplay; fullscreen; picture-in-picture"
DESCRIPTION_LENGTH = 200


def watch_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/watch/{video_id}"


def embed_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/embed/{video_id}"


def thumbnail_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/services/thumbnail/{video_id}"


def author_url(base: str, video: PublicVideo) -> str:
    # The gallery's listing of one uploader (what the watch page's owner link opens).
    return f"{base}/?owner={quote(video.user_id, safe='')}"


def iframe_html(src: str, size: Size, title: str) -> str:
    """The embed code: one iframe, every attribute value escaped."""
    e = html.escape
    return (
        f'<iframe src="{e(src)}" width="{size.width}" height="{size.height}" '
        f'title="{e(title)}" frameborder="0" allow="{IFRAME_ALLOW}" allowfullscreen></iframe>'
    )


def frameable_policy(policy: str) -> str:
    """The page's CSP with ``frame-ancestors *``: any site may embed the player."""
    kept = [d for d in policy.split("; ") if not d.startswith("frame-ancestors")]
    return "; ".join([*kept, "frame-ancestors *"])


def _short(text: str, limit: int = DESCRIPTION_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def meta_tags(base: str, video: PublicVideo, site_name: str) -> list[tuple[str, str, str]]:
    """(attribute, name, content) of each Open Graph and Twitter card tag."""
    title = video.title or "Untitled"
    description = _short(video.description) or f"Watch {title} on {site_name}."
    embed = embed_url(base, video.id)
    size = fit(aspect_of(video), None, None)
    tags: list[tuple[str, str, str]] = [
        ("property", "og:site_name", site_name),
        ("property", "og:type", "video.other"),
        ("property", "og:title", title),
        ("property", "og:description", description),
        ("property", "og:url", watch_url(base, video.id)),
    ]
    if video.thumbnail_url:
        thumb = thumbnail_size(video)
        image = thumbnail_url(base, video.id)
        tags += [
            ("property", "og:image", image),
            ("property", "og:image:width", str(thumb.width)),
            ("property", "og:image:height", str(thumb.height)),
        ]
    tags += [("property", "og:video", embed), ("property", "og:video:url", embed)]
    if embed.startswith("https:"):
        tags.append(("property", "og:video:secure_url", embed))
    tags += [
        ("property", "og:video:type", "text/html"),
        ("property", "og:video:width", str(size.width)),
        ("property", "og:video:height", str(size.height)),
        ("name", "twitter:card", "player"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", description),
        ("name", "twitter:player", embed),
        ("name", "twitter:player:width", str(size.width)),
        ("name", "twitter:player:height", str(size.height)),
    ]
    if video.thumbnail_url:
        tags.append(("name", "twitter:image", thumbnail_url(base, video.id)))
    return tags


def with_meta(index: str, base: str, video: PublicVideo, site_name: str) -> str:
    """index.html with the video's title, description, preview tags and oEmbed link."""
    e = html.escape
    title = video.title or "Untitled"
    watch = watch_url(base, video.id)
    oembed = f"{base}/services/oembed?url={quote(watch, safe='')}&format=json"
    lines = [
        f'<meta {attr}="{e(name)}" content="{e(content)}">'
        for attr, name, content in meta_tags(base, video, site_name)
    ]
    if video.visibility == "unlisted":
        # Shared by link, never listed: previews yes, search engines' indexes no.
        lines.append('<meta name="robots" content="noindex">')
    lines += [
        f'<link rel="canonical" href="{e(watch)}">',
        f'<link rel="alternate" type="application/json+oembed" href="{e(oembed)}" '
        f'title="{e(title)}">',
    ]
    block = "\n  ".join(lines)
    page = index.replace(
        "<title>VideoForge</title>", f"<title>{e(title)} · {e(site_name)}</title>", 1
    )
    description = _short(video.description)
    if description:
        start = page.find('<meta name="description"')
        end = page.find(">", start)
        if start != -1 and end != -1:
            page = (
                page[:start]
                + f'<meta name="description" content="{e(description)}">'
                + page[end + 1 :]
            )
    head_end = page.find("</head>")
    if head_end == -1:
        return page
    return page[:head_end] + "  " + block + "\n" + page[head_end:]


def with_base_url(page: str, base: str) -> str:
    """The page with the public address the share box builds its links from."""
    tag = f'<meta name="videoforge:base-url" content="{html.escape(base)}">'
    head_end = page.find("</head>")
    if head_end == -1:
        return page
    return page[:head_end] + "  " + tag + "\n" + page[head_end:]


def render_embed(
    base: str,
    video: PublicVideo | None,
    site_name: str,
    options: EmbedOptions | None = None,
    *,
    unavailable: bool = False,
) -> str:
    """The embed page: the player's shell (embed.js plays it) or a message."""
    e = html.escape
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        '<link rel="stylesheet" href="/embed.css">',
    ]
    if video is None or video.status != "ready":
        if unavailable:
            heading, text = (
                "Video unavailable",
                "Playback is unavailable right now. Try again later.",
            )
        elif video is None:
            # Private, hidden and missing are one answer for an anonymous viewer (the
            # gallery tells them apart for the owner only), so the message names both.
            heading, text = "Video unavailable", "This video is private or no longer available."
        elif video.status == "failed":
            heading, text = "Video unavailable", "This video could not be processed."
        else:
            heading, text = "Processing", "This video is still being processed. Try again soon."
        title = e(video.title or "Untitled") if video is not None else "Video unavailable"
        body = (
            f'<div class="embed embed--message" role="status" data-state="unavailable">'
            f'<p class="embed__heading">{e(heading)}</p><p class="embed__text">{e(text)}</p>'
            f'<a class="embed__brand" href="{e(base)}/" target="_blank" rel="noopener">'
            f"{e(site_name)}</a></div>"
        )
        return _page(head, f"{title} · {e(site_name)}", body)
    options = options or EmbedOptions()
    title = video.title or "Untitled"
    watch = watch_url(base, video.id)
    # The title links to the watch page (in a new tab: the embedding page stays).
    title_link = (
        f'<a class="embed__title" href="{e(watch)}" target="_blank" rel="noopener">{e(title)}</a>'
        if options.title
        else ""
    )
    poster = f' poster="{e(thumbnail_url(base, video.id))}"' if video.thumbnail_url else ""
    head.append('<script type="module" src="/embed.js"></script>')
    body = (
        f'<div class="embed" id="embed" data-video-id="{e(str(video.id))}" '
        f'data-watch-url="{e(watch)}" {options.data_attributes()}>'
        f'<video class="embed__video" playsinline preload="metadata"{poster} '
        f'aria-label="{e("Video: " + title)}"></video>'
        f"{title_link}"
        f'<p class="embed__notice" role="status" hidden></p>'
        "</div>"
    )
    return _page(head, f"{e(title)} · {e(site_name)}", body)


def _page(head: list[str], title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n'
        + "\n".join(head)
        + f"\n<title>{title}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
