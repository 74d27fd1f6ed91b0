// The owner's view statistics on the watch page: a bar per day for the last 30 days.
import * as api from "./api.js";
import { h } from "./dom.js";

const DAYS = 30;
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** A panel that fills itself in; failures leave a short note instead of breaking the page. */
export function analyticsPanel(videoId) {
  const chart = h("div", { class: "chart", role: "img", "aria-label": "Loading view statistics" });
  const summary = h("p", { class: "muted analytics__summary" }, "Loading…");
  const panel = h(
    "section",
    { class: "analytics", "aria-labelledby": `analytics-${videoId}` },
    h("h2", { id: `analytics-${videoId}` }, "Views in the last 30 days"),
    summary,
    chart,
  );
  api
    .request("GET", `/api/gallery/videos/${encodeURIComponent(videoId)}/analytics`, { query: { days: DAYS } })
    .then((data) => {
      const counts = new Map((data.days ?? []).map((d) => [String(d.day), Number(d.views) || 0]));
      const today = new Date();
      const series = [];
      for (let i = DAYS - 1; i >= 0; i -= 1) {
        const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
        series.push({ day, views: counts.get(isoDay(day)) ?? 0 });
      }
      const recent = series.reduce((sum, d) => sum + d.views, 0);
      const max = Math.max(1, ...series.map((d) => d.views));
      // Views are buffered before they are stored, so the newest may not be counted yet.
      summary.textContent = `${recent} ${recent === 1 ? "view" : "views"} in 30 days. The latest views can take a minute to appear.`;
      chart.setAttribute("aria-label", `Daily views over the last 30 days, up to ${max} per day`);
      chart.replaceChildren(
        ...series.map(({ day, views }) => {
          const bar = h("span", {
            class: "chart__bar",
            title: `${dayFormat.format(day)}: ${views} ${views === 1 ? "view" : "views"}`,
          });
          // CSSOM, not a style attribute: allowed even under a strict style-src CSP.
          bar.style.setProperty("--v", String(views / max));
          return bar;
        }),
      );
    })
    .catch(() => {
      summary.textContent = "View statistics are not available right now.";
      chart.remove();
    });
  return panel;
}
