// The details step of one upload, beside its progress: title (prefilled from the file
// name), description, visibility, comments, playlists and when to publish, then, once
// processing has made the stills, the thumbnail. Until the video exists the choices
// travel with the upload's confirm (upload.js); from then on each change is saved at once.
import * as api from "./api.js";
import { h, replace, toast, uid } from "./dom.js";
import { localInputValue, PUBLISH_CHOICES, VISIBILITIES } from "./edit-dialog.js";

const COMMENT_CHOICES = [
  ["on", "On"],
  ["held", "Hold all for my approval"],
  ["off", "Off"],
];

/** When a video is public, in words, for its owner ("Draft", "Scheduled for …"). */
export function publishBadge(video) {
  const state = video.publish_state ?? "published";
  if (state === "draft") return h("span", { class: "badge badge--draft", dataset: { publish: state } }, "Draft");
  if (state === "when_ready") return h("span", { class: "badge badge--draft", dataset: { publish: state } }, "Publishes when ready");
  if (state === "scheduled") {
    const when = new Date(video.publish_at);
    return h(
      "span",
      { class: "badge badge--scheduled", dataset: { publish: state } },
      "Scheduled for ",
      h("time", { datetime: video.publish_at }, when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" })),
    );
  }
  return null;
}

/**
 * The form for `upload`. Returns {element, attach(video), showThumbnails(video)}:
 * `attach` once the video exists (saves what changed meanwhile, the comment policy and
 * the playlists), `showThumbnails` once it has thumbnail candidates.
 */
export function detailsForm(upload) {
  const name = upload.file.name;
  const ids = { title: uid("d-title"), desc: uid("d-desc"), vis: uid("d-vis"), comments: uid("d-com"), when: uid("d-when"), at: uid("d-at") };
  const titleInput = h("input", { id: ids.title, name: "title", required: true, maxlength: 200, "data-field": "title" });
  titleInput.value = upload.title;
  const descInput = h("textarea", { id: ids.desc, name: "description", rows: 3, maxlength: 5000, "data-field": "description" });
  const visSelect = h("select", { id: ids.vis, name: "visibility", "data-field": "visibility" }, VISIBILITIES.map(([v, label]) => h("option", { value: v }, label)));
  visSelect.value = upload.visibility;
  const commentSelect = h("select", { id: ids.comments, name: "comment_policy", "data-field": "comment_policy" }, COMMENT_CHOICES.map(([v, label]) => h("option", { value: v }, label)));
  const atInput = h("input", { id: ids.at, type: "datetime-local", name: "publish_at", "data-field": "publish_at" });
  atInput.value = localInputValue(new Date(Date.now() + 3600_000));
  const atField = h("div", { class: "field upload-details__at", hidden: true }, h("label", { for: ids.at }, "Publish at"), atInput);
  const radios = PUBLISH_CHOICES.map(([value, label, hint]) => {
    const id = uid("d-pub");
    const input = h("input", { type: "radio", id, name: `${ids.when}-publish`, value, "data-publish": value });
    input.checked = value === upload.publish;
    return h("div", { class: "upload-details__choice" }, input, h("label", { for: id }, label), h("span", { class: "field__hint" }, hint));
  });
  // The job reads it when processing starts (right after the upload): fixed from then on.
  const loudnessId = uid("d-loud");
  const loudnessBox = h("input", { type: "checkbox", id: loudnessId, name: "loudness_normalization", "data-field": "loudness_normalization" });
  loudnessBox.checked = upload.loudnessNormalization;
  loudnessBox.addEventListener("change", () => {
    upload.loudnessNormalization = loudnessBox.checked;
  });
  const loudnessHint = h("span", { class: "field__hint" }, "Brings quiet and loud videos to the same level. Turn it off for music mastered as it should sound.");
  const loudnessField = h("div", { class: "upload-details__choice" }, loudnessBox, h("label", { for: loudnessId }, "Normalise loudness"), loudnessHint);
  const playlistBox = h("div", { class: "upload-details__playlists" });
  const saved = h("p", { class: "upload-details__saved muted", "aria-live": "polite" });
  const thumbs = h("div", { class: "upload-details__thumbs", hidden: true });

  const element = h(
    "form",
    { class: "upload-details", "aria-label": `Details of ${name}`, novalidate: true },
    h("div", { class: "field" }, h("label", { for: ids.title }, "Title"), titleInput),
    h("div", { class: "field" }, h("label", { for: ids.desc }, "Description"), descInput),
    h(
      "div",
      { class: "upload-details__row" },
      h("div", { class: "field" }, h("label", { for: ids.vis }, "Visibility"), visSelect),
      h("div", { class: "field" }, h("label", { for: ids.comments }, "Comments"), commentSelect),
    ),
    h("fieldset", { class: "upload-details__publish" }, h("legend", {}, "When to publish"), radios, atField),
    loudnessField,
    playlistBox,
    thumbs,
    saved,
  );
  element.addEventListener("submit", (event) => event.preventDefault());

  let video = null;
  const chosenPlaylists = new Set();

  const publishChoice = () => element.querySelector(`input[name="${ids.when}-publish"]:checked`)?.value ?? "now";
  const publishAt = () => {
    const at = new Date(atInput.value);
    return Number.isNaN(at.getTime()) ? null : at.toISOString();
  };
  const showAt = () => {
    atField.hidden = publishChoice() !== "schedule";
  };
  showAt();

  // Before the video exists every change is kept on the upload for its confirm.
  const remember = () => {
    upload.title = titleInput.value.trim() || upload.title;
    upload.description = descInput.value;
    upload.visibility = visSelect.value;
    upload.publish = publishChoice();
    upload.publishAt = publishAt();
  };

  const save = async (changes) => {
    if (!video) return;
    try {
      video = await api.updateVideo(video.id, changes);
      saved.textContent = "Details saved.";
      element.dispatchEvent(new CustomEvent("saved", { detail: video }));
    } catch (err) {
      saved.textContent = "";
      toast(err.message, { kind: "error" });
    }
  };

  const publishChanges = () => {
    const publish = publishChoice();
    if (publish !== "schedule") return { publish };
    const at = publishAt();
    if (!at || Date.parse(at) <= Date.now()) {
      toast("Choose a time in the future to schedule it.", { kind: "error" });
      atInput.focus();
      return null;
    }
    return { publish, publish_at: at };
  };

  titleInput.addEventListener("change", () => {
    const title = titleInput.value.trim();
    if (!title) {
      titleInput.value = upload.title;
      toast("Give the video a title.", { kind: "error" });
      return;
    }
    remember();
    save({ title });
  });
  descInput.addEventListener("change", () => {
    remember();
    save({ description: descInput.value });
  });
  visSelect.addEventListener("change", () => {
    remember();
    save({ visibility: visSelect.value });
  });
  commentSelect.addEventListener("change", () => save({ comment_policy: commentSelect.value }));
  for (const radio of element.querySelectorAll(`input[name="${ids.when}-publish"]`)) {
    radio.addEventListener("change", () => {
      showAt();
      remember();
      const changes = publishChanges();
      if (changes) save(changes);
    });
  }
  atInput.addEventListener("change", () => {
    remember();
    const changes = publishChanges();
    if (changes) save(changes);
  });

  // The caller's playlists, to file the video in as soon as it exists.
  api
    .myPlaylists()
    .then((body) => {
      const lists = body.items ?? [];
      if (lists.length === 0) return;
      replace(
        playlistBox,
        h(
          "fieldset",
          {},
          h("legend", {}, "Add to playlists"),
          lists.map((list) => {
            const id = uid("d-pl");
            const box = h("input", { type: "checkbox", id, value: list.id, "data-playlist": list.id });
            box.addEventListener("change", async () => {
              if (box.checked) chosenPlaylists.add(list.id);
              else chosenPlaylists.delete(list.id);
              if (!video) return;
              try {
                if (box.checked) await api.addToPlaylist(list.id, video.id);
                else await api.removeFromPlaylist(list.id, video.id);
                saved.textContent = "Playlists saved.";
              } catch (err) {
                toast(err.message, { kind: "error" });
              }
            });
            return h("div", { class: "upload-details__choice" }, box, h("label", { for: id }, list.title));
          }),
        ),
      );
    })
    .catch(() => {}); // no playlists to offer: the rest of the form still works

  /** The video exists: save what the confirm did not carry. */
  async function attach(created) {
    if (video) return;
    video = created;
    remember();
    loudnessBox.disabled = true;
    loudnessHint.textContent = loudnessBox.checked ? "Processing normalises the audio." : "Processing keeps the audio as it is.";
    const changes = {};
    if (upload.title !== created.title) changes.title = upload.title;
    if (upload.description !== (created.description ?? "")) changes.description = upload.description;
    if (upload.visibility !== created.visibility) changes.visibility = upload.visibility;
    if (commentSelect.value !== (created.comment_policy ?? "on")) changes.comment_policy = commentSelect.value;
    const publish = publishChoice();
    const wanted = { now: "published", when_ready: "when_ready", schedule: "scheduled", draft: "draft" }[publish];
    if (wanted !== created.publish_state && !(publish === "when_ready" && created.publish_state === "published")) {
      Object.assign(changes, publishChanges() ?? {});
    }
    if (Object.keys(changes).length) await save(changes);
    for (const list of chosenPlaylists) {
      try {
        await api.addToPlaylist(list, created.id);
      } catch (err) {
        toast(err.message, { kind: "error" });
      }
    }
  }

  /** The stills exist: offer them, and an image of one's own. */
  function showThumbnails(current) {
    const candidates = current.thumbnail_candidates ?? [];
    if (candidates.length === 0 || !thumbs.hidden) return;
    const buttons = [];
    const mark = (chosen) => {
      for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.candidate === String(chosen)));
    };
    const fileId = uid("d-thumb");
    const picker = h("input", { id: fileId, type: "file", accept: "image/jpeg,image/png,image/webp", class: "visually-hidden", "data-field": "thumbnail_image" });
    picker.addEventListener("change", async () => {
      const file = picker.files[0];
      picker.value = "";
      if (!file) return;
      try {
        const updated = await api.uploadThumbnail(current.id, file);
        mark(null);
        saved.textContent = "Your thumbnail is saved.";
        element.dispatchEvent(new CustomEvent("saved", { detail: updated }));
      } catch (err) {
        toast(err.message, { kind: "error" });
      }
    });
    for (const candidate of candidates) {
      const button = h(
        "button",
        { type: "button", class: "thumb-choice", dataset: { candidate: candidate.number }, "aria-pressed": "false" },
        h("img", { src: candidate.url, alt: `Thumbnail choice ${candidate.number}`, width: 160, height: 90, loading: "lazy" }),
      );
      button.addEventListener("click", async () => {
        try {
          const updated = await api.chooseThumbnail(current.id, candidate.number);
          mark(candidate.number);
          saved.textContent = `Thumbnail ${candidate.number} chosen.`;
          element.dispatchEvent(new CustomEvent("saved", { detail: updated }));
        } catch (err) {
          toast(err.message, { kind: "error" });
        }
      });
      buttons.push(button);
    }
    mark(current.thumbnail_choice === "candidate" ? current.thumbnail_candidate : null);
    replace(
      thumbs,
      h("p", { class: "upload-details__label" }, "Thumbnail"),
      h("div", { class: "thumb-choices", role: "group", "aria-label": "Thumbnail choices" }, buttons),
      picker,
      h("label", { for: fileId, class: "button button--small" }, "Upload an image…"),
      h("p", { class: "field__hint" }, "JPEG, PNG or WebP, up to 5 MB."),
    );
    thumbs.hidden = false;
  }

  return { element, attach, showThumbnails };
}
