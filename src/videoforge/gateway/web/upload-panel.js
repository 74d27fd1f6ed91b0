// The upload panel of "My videos": picking or dropping files, per-file progress,
// resuming interrupted uploads, and importing from a link. The transfer logic is in
// upload.js; this module is only what the user sees.
import * as api from "./api.js";
import { formatBytes, h, randomId, replace, toast, uid } from "./dom.js";
import { VISIBILITIES } from "./edit-dialog.js";
import { describeJob } from "./job-status.js";
import { watchJob } from "./jobs-live.js";
import { detailsForm, publishBadge } from "./upload-details.js";
import { discardPending, pendingUploads, uploads, UploadState } from "./upload.js";

const VISIBILITY_KEY = "vf.upload_visibility";

const UPLOAD_LABELS = {
  [UploadState.QUEUED]: "Waiting…",
  [UploadState.UPLOADING]: "Uploading",
  [UploadState.PAUSED]: "Paused",
  [UploadState.CONFIRMING]: "Checking the file…",
  [UploadState.STARTING]: "Starting processing…",
  [UploadState.DONE]: "Uploaded",
  [UploadState.FAILED]: "Failed",
  [UploadState.CANCELLED]: "Cancelled",
};

function uploadRow(upload, disposers, onSaved) {
  const progressId = uid("up");
  const bar = h("progress", { id: progressId, max: 100, value: upload.percent, "aria-label": `Upload progress of ${upload.file.name}` });
  const pct = h("span", { class: "upload__pct" }, `${upload.percent}%`);
  const status = h("p", { class: "upload__status", "aria-live": "polite" });
  const actions = h("div", { class: "upload__actions" });
  const jobLine = h("p", { class: "upload__job", "aria-live": "polite" });
  const publishLine = h("p", { class: "upload__publish" });
  const details = detailsForm(upload);
  const li = h(
    "li",
    { class: "upload upload--with-details", dataset: { state: upload.state } },
    h(
      "div",
      { class: "upload__main" },
      h("div", { class: "upload__head" }, h("span", { class: "upload__name" }, upload.file.name), h("span", { class: "muted" }, formatBytes(upload.size))),
      h("div", { class: "upload__bar" }, bar, pct),
      status,
      jobLine,
      publishLine,
      actions,
    ),
    details.element,
  );
  const showPublish = (video) => replace(publishLine, publishBadge(video));
  details.element.addEventListener("saved", (event) => {
    showPublish(event.detail);
    onSaved(event.detail); // "My videos" shows the new title, thumbnail and badges too
  });
  // The gallery learns of the stills from the job's COMPLETED event, a moment after the
  // job says so: ask for the video until its thumbnail choices are there.
  let stillsAsked = false;
  const askForStills = async (videoId) => {
    if (stillsAsked) return;
    stillsAsked = true;
    for (let attempt = 0; attempt < 30 && li.isConnected; attempt += 1) {
      try {
        const video = await api.getVideo(videoId);
        showPublish(video);
        if ((video.thumbnail_candidates ?? []).length) {
          details.showThumbnails(video);
          return;
        }
      } catch {
        // Try again below: the gallery may be catching up.
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  // After the upload the row follows its processing job (the job is the source of truth:
  // see job-status.js): queued with its place, downloading, processing with % and ETA,
  // then a link to watch, or the reason it failed.
  let job = null;
  let stopWatching = null;
  const renderJob = () => {
    if (!job) return;
    const d = describeJob(job);
    li.dataset.job = d.phase;
    const badge = ["ready", "failed", "cancelled"].includes(d.phase) ? d.phase : "processing";
    const parts = [h("span", { class: `badge badge--status badge--${badge}` }, d.label)];
    if (d.detail) parts.push(h("span", { class: "upload__detail" }, d.detail));
    if (d.phase === "ready" && job.video_id) {
      parts.push(h("a", { href: `/watch/${encodeURIComponent(job.video_id)}`, class: "upload__watch" }, "Watch now"));
    }
    if (d.error) parts.push(h("span", { class: "form-error upload__reason" }, d.error));
    replace(jobLine, parts);
    if (d.phase === "ready" && job.video_id) askForStills(job.video_id);
    if (d.progress !== null) {
      bar.value = d.progress;
      bar.setAttribute("aria-label", `Processing progress of ${upload.file.name}`);
      pct.textContent = `${d.progress}%`;
    } else if (d.phase === "ready") {
      bar.value = 100;
      pct.textContent = "100%";
    }
  };
  const follow = () => {
    if (stopWatching || !upload.job) return;
    job = upload.job;
    renderJob();
    stopWatching = watchJob(job.id, (update) => {
      job = { ...job, ...update };
      renderJob();
    });
    disposers.add(stopWatching);
  };
  const renderState = () => {
    li.dataset.state = upload.state;
    status.textContent = upload.error ? `${UPLOAD_LABELS[upload.state]}: ${upload.error}` : UPLOAD_LABELS[upload.state];
    if (upload.video) {
      details.attach(upload.video);
      showPublish(upload.video);
    }
    if (upload.state === UploadState.DONE) follow();
    const buttons = [];
    if ([UploadState.QUEUED, UploadState.UPLOADING, UploadState.PAUSED].includes(upload.state)) {
      if (upload.state === UploadState.PAUSED) {
        buttons.push(h("button", { type: "button", class: "button button--small", onclick: () => uploads.resume(upload) }, "Resume"));
      }
      buttons.push(h("button", { type: "button", class: "button button--small button--ghost", onclick: () => upload.cancel() }, "Cancel"));
    }
    if (upload.canRetryFinish) {
      buttons.push(h("button", { type: "button", class: "button button--small", onclick: () => upload.resume() }, "Try again"));
    }
    if ([UploadState.DONE, UploadState.FAILED, UploadState.CANCELLED].includes(upload.state)) {
      buttons.push(
        h("button", {
          type: "button",
          class: "button button--small button--ghost",
          onclick: () => {
            uploads.uploads = uploads.uploads.filter((u) => u !== upload);
            stopWatching?.();
            li.remove();
          },
        }, "Dismiss"),
      );
    }
    replace(actions, buttons);
  };
  const renderProgress = () => {
    if (job) return; // the bar shows processing now
    bar.value = upload.percent;
    pct.textContent = `${upload.percent}%`;
  };
  upload.addEventListener("change", () => {
    renderState();
    renderProgress();
  });
  upload.addEventListener("progress", renderProgress);
  renderState();
  return li;
}

/**
 * The upload panel: file picker, drop zone, visibility for new uploads, one progress row
 * per file, interrupted uploads to resume, and import from a link. `onUploaded(video, job)`
 * is called when a file is uploaded and its processing started (or an import began).
 * Returns {section, dispose}.
 */
export function uploadPanel(onUploaded) {
  const me = api.user();
  const inputId = uid("files");
  const visId = uid("vis");
  const input = h("input", { id: inputId, type: "file", multiple: true, accept: "video/*,.mkv,.mov,.mp4,.webm,.avi,.m4v", class: "visually-hidden" });
  const visSelect = h("select", { id: visId }, VISIBILITIES.map(([v, label]) => h("option", { value: v }, label)));
  visSelect.value = localStorage.getItem(VISIBILITY_KEY) || "public";
  visSelect.addEventListener("change", () => localStorage.setItem(VISIBILITY_KEY, visSelect.value));
  const list = h("ul", { class: "upload-list", "aria-label": "Uploads" });
  const pendingBox = h("div", { class: "pending" });
  const disposers = new Set(); // the rows' job watchers, stopped when the page goes
  const onSaved = (video) => onUploaded(video, null);

  const addFiles = (files) => {
    const accepted = [...files].filter((f) => f.size > 0);
    if (accepted.length < files.length) toast("Empty files were skipped.", { kind: "error" });
    for (const file of accepted) {
      if (uploads.isActive(file, me.id)) {
        toast(`“${file.name}” is already uploading.`);
        continue;
      }
      const upload = uploads.add(file, { userId: me.id, visibility: visSelect.value });
      list.prepend(uploadRow(upload, disposers, onSaved));
    }
    renderPending();
  };

  const onChange = (event) => {
    const upload = event.detail;
    if (upload.state === UploadState.DONE) onUploaded(upload.video, upload.job);
    if (upload.state === UploadState.DONE || upload.state === UploadState.FAILED) renderPending();
  };
  uploads.addEventListener("change", onChange);

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });

  const dropzone = h(
    "div",
    { class: "dropzone" },
    h("img", { src: "/icons/upload-dark.svg", alt: "", width: 40, height: 40, class: "dropzone__icon" }),
    h("p", { class: "dropzone__text" }, "Drag and drop video files here, or"),
    input,
    h("label", { for: inputId, class: "button button--primary" }, "Choose files"),
    h("p", { class: "field__hint" }, "MP4, MOV, WebM, MKV or AVI. Large files upload in parts and can resume after a dropped connection."),
  );
  let depth = 0;
  dropzone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    dropzone.classList.add("dropzone--over");
  });
  dropzone.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  dropzone.addEventListener("dragleave", () => {
    depth -= 1;
    if (depth <= 0) dropzone.classList.remove("dropzone--over");
  });
  dropzone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    dropzone.classList.remove("dropzone--over");
    if (e.dataTransfer?.files?.length) addFiles(e.dataTransfer.files);
  });

  function renderPending() {
    const active = new Set(uploads.uploads.filter((u) => ![UploadState.DONE, UploadState.CANCELLED, UploadState.FAILED].includes(u.state)).map((u) => u.fp));
    const pending = pendingUploads(me.id).filter((p) => !active.has(p.fingerprint));
    if (pending.length === 0) {
      replace(pendingBox);
      return;
    }
    replace(
      pendingBox,
      h("h3", {}, "Interrupted uploads"),
      h("p", { class: "muted" }, "Choose the same file again to continue where it stopped."),
      h(
        "ul",
        { class: "pending__list" },
        pending.map((p) => {
          const done = Object.keys(p.done || {}).length;
          const parts = Math.ceil(p.size / p.partSize);
          const fileId = uid("resume");
          const picker = h("input", { id: fileId, type: "file", accept: "video/*", class: "visually-hidden" });
          picker.addEventListener("change", () => {
            const file = picker.files[0];
            if (!file) return;
            if (file.name !== p.name || file.size !== p.size) {
              toast(`That is not “${p.name}”. Choose the same file to resume.`, { kind: "error" });
              return;
            }
            const upload = uploads.add(file, { userId: me.id, visibility: p.visibility || visSelect.value, title: p.title });
            list.prepend(uploadRow(upload, disposers, onSaved));
            renderPending();
          });
          return h(
            "li",
            { class: "pending__item" },
            h("span", { class: "upload__name" }, p.name),
            h("span", { class: "muted" }, `${formatBytes(p.size)} · ${Math.floor((done / parts) * 100)}% sent`),
            picker,
            h("label", { for: fileId, class: "button button--small" }, "Resume…"),
            h("button", {
              type: "button",
              class: "button button--small button--ghost",
              onclick: async () => {
                await discardPending(p.fingerprint);
                renderPending();
              },
            }, "Discard"),
          );
        }),
      ),
    );
  }

  const importForm = importFromUrl(onUploaded);

  // Uploads started before navigating away are still running: show them again.
  for (const upload of uploads.uploads) list.append(uploadRow(upload, disposers, onSaved));
  renderPending();

  const section = h(
    "section",
    { class: "panel upload-panel", id: "upload", "aria-labelledby": "upload-heading" },
    h("div", { class: "panel__head" }, h("h2", { id: "upload-heading" }, "Upload videos"), h("div", { class: "field field--inline" }, h("label", { for: visId }, "Visibility"), visSelect)),
    dropzone,
    pendingBox,
    list,
    importForm,
  );
  return {
    section,
    dispose: () => {
      uploads.removeEventListener("change", onChange);
      for (const stop of disposers) stop();
    },
  };
}

function importFromUrl(onImported) {
  const urlId = uid("import-url");
  const titleId = uid("import-title");
  const urlInput = h("input", { id: urlId, type: "url", name: "source_url", required: true, placeholder: "https://example.com/video.mp4", inputmode: "url" });
  const titleInput = h("input", { id: titleId, type: "text", name: "title", maxlength: 200 });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button" }, "Import");
  let idempotencyKey = randomId();
  const form = h(
    "form",
    { class: "import-form", "aria-labelledby": `${urlId}-legend` },
    h("h3", { id: `${urlId}-legend` }, "Or import from a link"),
    h(
      "div",
      { class: "import-form__row" },
      h("div", { class: "field" }, h("label", { for: urlId }, "Video URL"), urlInput),
      h("div", { class: "field" }, h("label", { for: titleId }, "Title (optional)"), titleInput),
      submit,
    ),
    error,
    h("p", { class: "field__hint" }, "Imported videos start as private; change that when they are ready."),
  );
  form.addEventListener("input", () => {
    // A changed form is a new request; an unchanged resubmission reuses the key.
    idempotencyKey = randomId();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const sourceUrl = urlInput.value.trim();
    if (!/^https?:\/\//i.test(sourceUrl) || !urlInput.checkValidity()) {
      error.textContent = "Enter an http:// or https:// address.";
      error.hidden = false;
      urlInput.focus();
      return;
    }
    submit.disabled = true;
    try {
      const job = await api.importUrl({ sourceUrl, title: titleInput.value.trim(), idempotencyKey });
      const video = job.video_id ? await api.getVideo(job.video_id) : null;
      onImported(video, job);
      form.reset();
      idempotencyKey = randomId();
      toast("Import started.");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
