// /admin/storage: storage per user, the largest first, with each user's quota (admins).
// Names come from the users' videos (strangers' text: text nodes only).
import * as api from "./api.js";
import { formatBytes, h, replace, toast, uid } from "./dom.js";
import { navigate } from "./router.js";

const GiB = 1024 ** 3;

function quotaCell(row, refresh) {
  const id = uid("quota");
  const input = h("input", {
    id,
    type: "number",
    min: "0",
    step: "0.1",
    inputmode: "decimal",
    value: row.quota_is_custom ? String(Math.round((row.quota_bytes / GiB) * 100) / 100) : "",
    placeholder: row.quota_bytes == null ? "no limit" : `default ${formatBytes(row.quota_bytes)}`,
    "aria-label": `Quota of ${row.owner_name || row.user_id} in GiB`,
  });
  const save = async (bytes) => {
    try {
      await api.request("PUT", `/api/gallery/admin/users/${encodeURIComponent(row.user_id)}/quota`, {
        body: { quota_bytes: bytes },
      });
      toast(bytes == null ? "Back to the default quota." : `Quota set to ${formatBytes(bytes)}.`);
      refresh();
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  };
  const form = h(
    "form",
    { class: "quota-form" },
    h("label", { for: id, class: "visually-hidden" }, "Quota (GiB)"),
    input,
    h("span", { "aria-hidden": "true" }, " GiB "),
    h("button", { type: "submit", class: "button button--ghost" }, "Set"),
    row.quota_is_custom
      ? h("button", { type: "button", class: "button button--ghost", onclick: () => save(null) }, "Default")
      : null,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const gib = Number(input.value);
    if (!input.value || !Number.isFinite(gib) || gib < 0) {
      toast("Enter a quota in GiB (0 or more).", { kind: "error" });
      return;
    }
    save(Math.round(gib * GiB));
  });
  return form;
}

/** /admin/storage */
export async function storageAdminView(main) {
  const user = api.user();
  if (!user) {
    navigate(`/login?next=${encodeURIComponent("/admin/storage")}`, { replace: true });
    return;
  }
  document.title = "Storage per user · VideoForge";
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table storage-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Videos"), h("th", {}, "Used"), h("th", {}, "Quota"))),
    body,
  );
  main.append(h("h1", {}, "Storage per user"), h("section", { class: "panel" }, table));
  const refresh = async () => {
    let page;
    try {
      page = await api.request("GET", "/api/gallery/admin/usage", { query: { limit: 500 } });
    } catch (err) {
      replace(body, h("tr", {}, h("td", { colspan: "4", class: "form-error", role: "alert" }, err.message)));
      return;
    }
    replace(
      body,
      ...page.items.map((row) =>
        h(
          "tr",
          { "data-user": row.user_id },
          h("td", {}, row.owner_name || "—", h("br"), h("small", { class: "muted" }, row.user_id)),
          h("td", {}, String(row.videos)),
          h("td", { "data-field": "used" }, formatBytes(row.used_bytes)),
          h("td", {}, quotaCell(row, refresh)),
        ),
      ),
    );
  };
  await refresh();
}
