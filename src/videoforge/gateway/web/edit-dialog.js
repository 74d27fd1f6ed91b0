// The owner's edit form (title, description, visibility) in a modal <dialog>.
import * as api from "./api.js";
import { h, uid } from "./dom.js";

export const VISIBILITIES = [
  ["public", "Public", "Anyone can find and watch it."],
  ["unlisted", "Unlisted", "Not listed or searchable; anyone with the link can watch."],
  ["private", "Private", "Only you can watch it."],
];

/** Open the editor for `video`; resolves with the updated video, or null if cancelled. */
export function editVideoDialog(video) {
  return new Promise((resolve) => {
    const titleId = uid("edit");
    const tId = uid("title");
    const dId = uid("desc");
    const vId = uid("vis");
    const hintId = uid("vis-hint");
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const titleInput = h("input", { id: tId, name: "title", required: true, maxlength: 200 });
    titleInput.value = video.title ?? "";
    const descInput = h("textarea", { id: dId, name: "description", rows: 4, maxlength: 5000 });
    descInput.value = video.description ?? "";
    const hint = h("p", { class: "field__hint", id: hintId });
    const visSelect = h(
      "select",
      { id: vId, name: "visibility", "aria-describedby": hintId },
      VISIBILITIES.map(([value, label]) => h("option", { value }, label)),
    );
    visSelect.value = video.visibility ?? "public";
    const showHint = () => {
      hint.textContent = VISIBILITIES.find(([v]) => v === visSelect.value)?.[2] ?? "";
    };
    visSelect.addEventListener("change", showHint);
    showHint();
    const save = h("button", { type: "submit", class: "button button--primary" }, "Save");
    const cancel = h("button", { type: "button", class: "button button--ghost" }, "Cancel");
    const form = h(
      "form",
      { class: "edit-form" },
      h("h2", { id: titleId }, "Edit video"),
      h("div", { class: "field" }, h("label", { for: tId }, "Title"), titleInput),
      h("div", { class: "field" }, h("label", { for: dId }, "Description"), descInput),
      h("div", { class: "field" }, h("label", { for: vId }, "Visibility"), visSelect, hint),
      error,
      h("div", { class: "dialog__actions" }, cancel, save),
    );
    const dialog = h("dialog", { class: "dialog dialog--wide", "aria-labelledby": titleId }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = titleInput.value.trim();
      if (!title) {
        error.textContent = "Give the video a title.";
        error.hidden = false;
        titleInput.focus();
        return;
      }
      const changes = {};
      if (title !== video.title) changes.title = title;
      if (descInput.value !== (video.description ?? "")) changes.description = descInput.value;
      if (visSelect.value !== video.visibility) changes.visibility = visSelect.value;
      if (Object.keys(changes).length === 0) {
        dialog.close();
        return;
      }
      // The version makes the edit conditional: a concurrent change is reported, not overwritten.
      if (video.version !== undefined && video.version !== null) changes.version = video.version;
      save.disabled = true;
      error.hidden = true;
      try {
        result = await api.updateVideo(video.id, changes);
        dialog.close();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        save.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    titleInput.focus();
  });
}
