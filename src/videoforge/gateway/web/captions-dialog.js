// The owner's captions of a video, in a modal <dialog>: the tracks it has (those of the
// uploaded file and the owner's own), a form that uploads an SRT or WebVTT file for a
// language (adding it, or replacing that language's track), and Delete for an uploaded
// track. The server parses every file; its message (which names the line) is shown.
import * as api from "./api.js";
import { h, uid } from "./dom.js";

/** The gallery's limit (gallery/captions/service.py CAPTION_MAX_BYTES). */
export const CAPTION_MAX_BYTES = 512 * 1024;
/** Suggestions for the language field; any BCP 47 tag is accepted. */
const LANGUAGES = [
  ["en", "English"], ["es", "Spanish"], ["fr", "French"], ["de", "German"], ["it", "Italian"],
  ["pt", "Portuguese"], ["pt-br", "Portuguese (Brazil)"], ["nl", "Dutch"], ["pl", "Polish"],
  ["ru", "Russian"], ["uk", "Ukrainian"], ["tr", "Turkish"], ["ar", "Arabic"], ["hi", "Hindi"],
  ["ja", "Japanese"], ["ko", "Korean"], ["zh", "Chinese"], ["sv", "Swedish"],
];

function sourceText(track) {
  return track.source === "uploaded" ? "Uploaded by you" : "From the video file";
}

/**
 * Open the captions manager for `video`; resolves true when a track was added, replaced
 * or deleted (the caller reloads the player), false otherwise.
 */
export function captionsDialog(video) {
  return new Promise((resolve) => {
    let changed = false;
    const titleId = uid("captions");
    const langId = uid("cap-lang");
    const listId = uid("cap-langs");
    const labelId = uid("cap-label");
    const fileId = uid("cap-file");
    const status = h("p", { class: "field__hint", role: "status", "aria-live": "polite" });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const list = h("ul", { class: "captions-list", "aria-label": "Caption tracks" });
    const langInput = h("input", {
      id: langId, name: "language", required: true, maxlength: 35, list: listId,
      autocomplete: "off", spellcheck: "false", placeholder: "en",
    });
    const labelInput = h("input", { id: labelId, name: "label", maxlength: 100, placeholder: "English" });
    const fileInput = h("input", { id: fileId, name: "file", type: "file", required: true, accept: ".srt,.vtt,text/vtt,application/x-subrip" });
    const upload = h("button", { type: "submit", class: "button button--primary" }, "Upload");
    const close = h("button", { type: "button", class: "button button--ghost" }, "Close");

    const showError = (message) => {
      error.textContent = message;
      error.hidden = !message;
    };

    const row = (track) => {
      const name = track.label || track.language || "Captions";
      const remove = track.source === "uploaded" && track.language
        ? h("button", {
          type: "button",
          class: "button button--small button--danger-ghost",
          "aria-label": `Delete ${name}`,
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            showError("");
            try {
              await api.deleteCaption(video.id, track.language);
              changed = true;
              status.textContent = `${name} deleted.`;
              await refresh();
            } catch (err) {
              showError(err.message);
              event.currentTarget.disabled = false;
            }
          },
        }, "Delete")
        : null;
      return h(
        "li",
        { class: "captions-list__item", dataset: { language: track.language ?? "", source: track.source } },
        h("span", { class: "captions-list__name" }, name),
        h("span", { class: "captions-list__meta" }, [track.language, sourceText(track)].filter(Boolean).join(" · ")),
        remove,
      );
    };

    async function refresh() {
      try {
        const { items } = await api.listCaptions(video.id);
        list.replaceChildren(...items.map(row));
        if (items.length === 0) list.append(h("li", { class: "captions-list__empty" }, "No captions yet."));
      } catch (err) {
        showError(err.message);
      }
    }

    const form = h(
      "form",
      { class: "edit-form captions-form" },
      h("h2", { id: titleId }, "Captions"),
      list,
      h("h3", {}, "Add or replace a language"),
      h("div", { class: "field" }, h("label", { for: langId }, "Language"), langInput,
        h("datalist", { id: listId }, LANGUAGES.map(([value, label]) => h("option", { value }, label)))),
      h("div", { class: "field" }, h("label", { for: labelId }, "Name shown in the player (optional)"), labelInput),
      h("div", { class: "field" }, h("label", { for: fileId }, "SRT or WebVTT file (at most 512 KiB)"), fileInput),
      error,
      status,
      h("div", { class: "dialog__actions" }, close, upload),
    );
    const dialog = h("dialog", { class: "dialog dialog--wide", "aria-labelledby": titleId }, form);
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(changed);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const language = langInput.value.trim();
      const file = fileInput.files?.[0];
      if (!language || !file) {
        showError(!language ? "Say which language the captions are in." : "Choose a caption file.");
        return;
      }
      if (file.size > CAPTION_MAX_BYTES) {
        showError("A caption file may be at most 512 KiB.");
        return;
      }
      upload.disabled = true;
      showError("");
      status.textContent = "Uploading…";
      try {
        const track = await api.putCaption(video.id, language, file, labelInput.value.trim());
        changed = true;
        status.textContent = `${track.label} saved (${track.cues} ${track.cues === 1 ? "cue" : "cues"}).`;
        form.reset();
        await refresh();
      } catch (err) {
        status.textContent = "";
        showError(err.message);
      } finally {
        upload.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    refresh();
    langInput.focus();
  });
}
