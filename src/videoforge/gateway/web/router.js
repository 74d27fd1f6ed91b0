// History routing. The gateway answers every non-API path with index.html, so deep links
// like /watch/<id> work on reload. Views are functions (container, params, query) that may
// return a cleanup function, called when the user navigates away.

const routes = [];
let cleanup = null;
let renderToken = 0;

/** Register a route: pattern like "/watch/:id". */
export function route(pattern, view, { title = "" } = {}) {
  const names = [];
  const source = pattern
    .replace(/\/$/, "")
    .replace(/:([a-z_]+)/gi, (_, name) => {
      names.push(name);
      return "([^/]+)";
    });
  routes.push({ regex: new RegExp(`^${source}/?$`), names, view, title });
}

/** Go to a path inside the app (pushes history unless replace). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.scrollTo(0, 0);
  return render({ focus: true });
}

/** Re-render the current location. */
export async function render({ focus = false } = {}) {
  const main = document.getElementById("main");
  const { pathname, search } = window.location;
  const match = routes
    .map((r) => ({ r, m: pathname.match(r.regex) }))
    .find(({ m }) => m !== null);
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  renderToken += 1;
  const token = renderToken;
  main.replaceChildren();
  const query = new URLSearchParams(search);
  const ctx = { isCurrent: () => token === renderToken };
  let result;
  if (!match) {
    result = await notFoundView(main);
  } else {
    const params = {};
    match.r.names.forEach((name, i) => {
      params[name] = decodeURIComponent(match.m[i + 1]);
    });
    result = await match.r.view(main, params, query, ctx);
  }
  if (token !== renderToken) {
    if (typeof result === "function") result();
    return;
  }
  cleanup = typeof result === "function" ? result : null;
  markCurrentNav(pathname);
  if (focus) focusMain();
}

function notFoundView(main) {
  document.title = "Page not found · VideoForge";
  const h1 = document.createElement("h1");
  h1.textContent = "Page not found";
  const p = document.createElement("p");
  const a = document.createElement("a");
  a.href = "/";
  a.textContent = "Go to the gallery";
  p.append("There is nothing at this address. ", a);
  main.append(h1, p);
}

function markCurrentNav(pathname) {
  for (const link of document.querySelectorAll(".site-nav a")) {
    const href = link.getAttribute("href");
    const current = href === "/" ? pathname === "/" : pathname.startsWith(href);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Intercept same-origin link clicks so navigation stays in the app. */
export function start() {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/storage/")) return;
    event.preventDefault();
    if (url.pathname + url.search !== window.location.pathname + window.location.search) {
      navigate(url.pathname + url.search + url.hash).then(() => focusHash(url.hash));
    } else {
      focusHash(url.hash);
    }
  });
  window.addEventListener("popstate", () => render({ focus: true }));
  return render();
}

/** Bring an in-page target (like #upload) into view and give it focus. */
function focusHash(hash) {
  const target = hash ? document.getElementById(decodeURIComponent(hash.slice(1))) : null;
  if (!target) return;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.scrollIntoView({ block: "start" });
  target.focus({ preventScroll: true });
}

/** Move keyboard focus to the new page's heading (screen readers announce it). */
function focusMain() {
  const heading = document.querySelector("#main h1");
  const target = heading ?? document.getElementById("main");
  if (heading && !heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: true });
}
