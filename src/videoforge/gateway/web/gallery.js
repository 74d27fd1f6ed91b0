// The public gallery: search, sort, a responsive grid and pagination, optionally of one
// uploader's videos. The query lives in the URL (?q=&sort=&page=&owner=) so results can be
// bookmarked and the back button works.
import * as api from "./api.js";
import { h, replace, uid } from "./dom.js";
import { ownerPlaylists } from "./playlists.js";
import { ownerOf, videoCard } from "./video-card.js";

const PER_PAGE = 24;
const SORTS = [
  ["newest", "Newest"],
  ["oldest", "Oldest"],
  ["most_viewed", "Most viewed"],
  ["likes", "Most liked"],
  ["title", "Title (A–Z)"],
];

function readQuery(query) {
  const sort = SORTS.some(([v]) => v === query.get("sort")) ? query.get("sort") : "newest";
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const owner = (query.get("owner") || "").trim() || null;
  return { q: (query.get("q") || "").trim(), sort, page, owner };
}

function toSearch({ q, sort, page, owner }) {
  const params = new URLSearchParams();
  if (owner) params.set("owner", owner);
  if (q) params.set("q", q);
  if (sort !== "newest") params.set("sort", sort);
  if (page > 1) params.set("page", String(page));
  const s = params.toString();
  return s ? `/?${s}` : "/";
}

/** / — the grid of public, ready videos. */
export function galleryView(main, _params, query, ctx) {
  let state = readQuery(query);
  let loadSeq = 0; // a slower, older response must not overwrite a newer one
  let ownerName = null; // the uploader's name, once a page of theirs has been seen
  document.title = state.q ? `“${state.q}” · VideoForge` : "VideoForge";

  const searchId = uid("q");
  const sortId = uid("sort");
  const searchInput = h("input", {
    id: searchId,
    type: "search",
    name: "q",
    placeholder: "Search videos",
    autocomplete: "off",
    enterkeyhint: "search",
  });
  searchInput.value = state.q;
  const sortSelect = h(
    "select",
    { id: sortId, name: "sort" },
    SORTS.map(([value, label]) => h("option", { value }, label)),
  );
  sortSelect.value = state.sort;
  const form = h(
    "form",
    { class: "toolbar", role: "search", "aria-label": "Videos" },
    h(
      "div",
      { class: "toolbar__search" },
      h("label", { for: searchId, class: "visually-hidden" }, "Search videos"),
      searchInput,
      h("button", { type: "submit", class: "button button--primary" }, "Search"),
    ),
    h("div", { class: "toolbar__sort" }, h("label", { for: sortId }, "Sort by"), sortSelect),
  );
  const status = h("p", { class: "results-status", role: "status", "aria-live": "polite" });
  const grid = h("ul", { class: "grid", "aria-label": "Videos" });
  const pager = h("nav", { class: "pager", "aria-label": "Pagination" });
  const heading = h("h1", {}, "Browse videos");

  main.append(h("section", { class: "page-head" }, heading, form), status, grid, pager);
  // An uploader's page shows their public playlists under their videos.
  if (state.owner) main.append(ownerPlaylists(state.owner, ctx));

  /** "Browse videos", "Videos by Ana", "Results for “q”" or "Results for “q” by Ana". */
  function showHeading() {
    const who = state.owner ? (ownerName ?? "this uploader") : null;
    let text = state.q ? `Results for “${state.q}”` : who ? `Videos by ${who}` : "Browse videos";
    if (state.q && who) text += ` by ${who}`;
    heading.textContent = text;
    document.title = state.q || who ? `${state.q ? `“${state.q}”` : text} · VideoForge` : "VideoForge";
  }

  async function load({ push = false } = {}) {
    const path = toSearch(state);
    if (push && path !== window.location.pathname + window.location.search) {
      history.pushState(null, "", path);
    }
    showHeading();
    loadSeq += 1;
    const seq = loadSeq;
    grid.setAttribute("aria-busy", "true");
    status.textContent = "Loading videos…";
    let page;
    try {
      const filters = state.owner ? { owner: state.owner } : {};
      page = await api.listVideos({ q: state.q, sort: state.sort, page: state.page, per_page: PER_PAGE, ...filters });
    } catch (err) {
      if (seq !== loadSeq || !ctx.isCurrent()) return;
      grid.removeAttribute("aria-busy");
      status.textContent = "";
      replace(grid);
      replace(pager);
      if (err.code === "page_too_deep") {
        // A hand-edited (or very old) URL: page numbers stop at the counted videos.
        status.append(
          h("span", { class: "form-error" }, "That page is too far back. "),
          h("a", { href: toSearch({ ...state, page: 1 }) }, "Go to the first page"),
          " or narrow the search.",
        );
        return;
      }
      status.append(h("span", { class: "form-error" }, `Could not load videos: ${err.message}`));
      return;
    }
    if (seq !== loadSeq || !ctx.isCurrent()) return;
    const last = Math.max(1, page.pages || 1);
    if (page.items.length === 0 && page.pages !== null && state.page > last) {
      // A page past the end (an old link, a hand-edited URL): show the last page rather
      // than "Page 99 of 2", and say so.
      const asked = state.page;
      state = { ...state, page: last };
      history.replaceState(null, "", toSearch(state));
      await load();
      if (seq + 1 === loadSeq && ctx.isCurrent()) status.prepend(`There is no page ${asked}; showing page ${last}. `);
      return;
    }
    grid.removeAttribute("aria-busy");
    replace(grid, page.items.map((v) => videoCard(v)));
    const named = page.items.map(ownerOf).find(Boolean);
    if (state.owner && named && named !== ownerName) {
      ownerName = named;
      showHeading();
    }
    if (page.items.length === 0) {
      status.textContent = state.q
        ? `No videos match “${state.q}”.`
        : state.page > 1
          ? "There are no videos on this page."
          : state.owner
            ? "This uploader has no public videos."
            : "No videos yet. Be the first to upload one!";
      if (!state.q && !state.owner && state.page <= 1) {
        // An empty site: the way to fill it, for signed-in and new users alike (/my asks
        // for a log-in first when needed).
        status.append(" ", h("a", { class: "button button--primary empty-cta", href: "/my#upload" }, "Upload a video"));
      }
    } else if (page.total !== null) {
      const count = `${page.total.toLocaleString("en-US")}${page.totalExact ? "" : "+"}`;
      const noun = page.total === 1 && page.totalExact ? "video" : "videos";
      status.textContent = `${count} ${noun}${state.q ? ` for “${state.q}”` : ""}`;
    } else {
      status.textContent = "";
    }
    renderPager(page);
  }

  function renderPager(page) {
    replace(pager);
    if (page.page <= 1 && !page.hasNext) return;
    const go = (n) => (event) => {
      event.preventDefault();
      state = { ...state, page: n };
      load({ push: true }).then(() => heading.focus());
      window.scrollTo(0, 0);
    };
    const prev = page.page > 1
      ? h("a", { class: "button button--ghost", href: toSearch({ ...state, page: page.page - 1 }), rel: "prev", onclick: go(page.page - 1) }, "← Previous")
      : h("span", { class: "button button--ghost", "aria-disabled": "true" }, "← Previous");
    const next = page.hasNext
      ? h("a", { class: "button button--ghost", href: toSearch({ ...state, page: page.page + 1 }), rel: "next", onclick: go(page.page + 1) }, "Next →")
      : h("span", { class: "button button--ghost", "aria-disabled": "true" }, "Next →");
    const label = page.pages ? `Page ${page.page} of ${page.pages}` : `Page ${page.page}`;
    pager.append(prev, h("span", { class: "pager__label", "aria-current": "page" }, label), next);
  }

  heading.setAttribute("tabindex", "-1");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state = { ...state, q: searchInput.value.trim(), page: 1 };
    load({ push: true });
  });
  sortSelect.addEventListener("change", () => {
    state = { ...state, sort: sortSelect.value, page: 1 };
    load({ push: true });
  });

  load();
}
