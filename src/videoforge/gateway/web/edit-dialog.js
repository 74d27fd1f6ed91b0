// The owner's edit form (title, description, visibility, when to publish) in a modal <dialog>.
import * as api from "./api.js";
import { h, uid } from "./dom.js";

export const VISIBILITIES = [
  ["public", "Public", "Anyone can find and watch it."],
  ["unlisted", "Unlisted", "Not listed or searchable; anyone with the link can watch."],
  ["private", "Private", "Only you can watch it."],
];

export const PUBLISH_CHOICES = [
  ["now", "Publish now", "Public as soon as it is uploaded (listed once it is ready)."],
  ["when_ready", "Publish when ready", "Public the moment processing has finished."],
  ["schedule", "Schedule", "Public at the time you choose."],
  ["draft", "Save as draft", "Only you see it until you publish it."],
];

/** The choice that gives a video's `publish_state`. */
const CHOICE_OF_STATE = { published: "now", when_ready: "when_ready", scheduled: "schedule", draft: "draft" };

/** "2026-12-01T15:30" (a datetime-local value, local time) for a Date. */
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

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
    const pId = uid("pub");
    const atId = uid("pub-at");
    const initialChoice = CHOICE_OF_STATE[video.publish_state ?? "published"] ?? "now";
    const publishSelect = h("select", { id: pId, name: "publish" }, PUBLISH_CHOICES.map(([value, label]) => h("option", { value }, label)));
    publishSelect.value = initialChoice;
    const atInput = h("input", { id: atId, type: "datetime-local", name: "publish_at" });
    const initialAt = video.publish_at ? localInputValue(new Date(video.publish_at)) : localInputValue(new Date(Date.now() + 3600_000));
    atInput.value = initialAt;
    const atField = h("div", { class: "field" }, h("label", { for: atId }, "Publish at"), atInput);
    const showAt = () => {
      atField.hidden = publishSelect.value !== "schedule";
    };
    publishSelect.addEventListener("change", showAt);
    showAt();
    const save = h("button", { type: "submit", class: "button button--primary" }, "Save");
    const cancel = h("button", { type: "button", class: "button button--ghost" }, "Cancel");
    const form = h(
      "form",
      { class: "edit-form" },
      h("h2", { id: titleId }, "Edit video"),
      h("div", { class: "field" }, h("label", { for: tId }, "Title"), titleInput),
      h("div", { class: "field" }, h("label", { for: dId }, "Description"), descInput),
      h("div", { class: "field" }, h("label", { for: vId }, "Visibility"), visSelect, hint),
      h("div", { class: "field" }, h("label", { for: pId }, "When to publish"), publishSelect),
      atField,
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
      const choice = publishSelect.value;
      if (choice === "schedule" && (choice !== initialChoice || atInput.value !== initialAt)) {
        const at = new Date(atInput.value);
        if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
          error.textContent = "Choose a time in the future to schedule it.";
          error.hidden = false;
          atInput.focus();
          return;
        }
        changes.publish = "schedule";
        changes.publish_at = at.toISOString();
      } else if (choice !== initialChoice) {
        changes.publish = choice;
      }
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
