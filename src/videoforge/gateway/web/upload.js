// Uploads straight to the object store through presigned URLs.
//
// Small files: one form POST. Large files: multipart, 3 parts in flight, each part retried
// with exponential backoff; the upload's {key, upload_id, finished parts} is kept in
// localStorage so that after a network failure or a page reload the same file can be
// picked again and only the missing parts are sent (their URLs are re-signed).
// When the bytes are stored the upload is confirmed (creating the video) and a
// processing job is started.
import * as api from "./api.js";

const STORE_KEY = "vf.uploads.v1";
const PART_CONCURRENCY = 3;
const MAX_ATTEMPTS = 6;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const STALL_MS = 60_000;

export const UploadState = Object.freeze({
  QUEUED: "queued",
  UPLOADING: "uploading",
  PAUSED: "paused", // a network failure outlasted the retries; resumable
  CONFIRMING: "confirming",
  STARTING: "starting",
  DONE: "done",
  FAILED: "failed", // permanent (rejected file, quota...)
  CANCELLED: "cancelled",
});

// ------------------------------------------------------------------ persistence
function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

function saveStore(store) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(store));
  } catch {
    // Storage full or disabled: uploads still work, they just cannot resume after a reload.
  }
}

function fingerprint(userId, file) {
  return `${userId}|${file.name}|${file.size}|${file.lastModified}`;
}

/** Multipart uploads of this user that were interrupted (e.g. by a reload). */
export function pendingUploads(userId) {
  return Object.entries(loadStore())
    .filter(([, rec]) => rec.userId === userId)
    .map(([fp, rec]) => ({ fingerprint: fp, ...rec }));
}

/** Forget an interrupted upload and abort it on the server (best effort). */
export async function discardPending(fp) {
  const store = loadStore();
  const rec = store[fp];
  delete store[fp];
  saveStore(store);
  if (rec) {
    try {
      await api.abortMultipart({ key: rec.key, uploadId: rec.uploadId });
    } catch {
      // Unfinished uploads are swept by the server anyway.
    }
  }
}

// ------------------------------------------------------------------ transport
class TransferError extends Error {
  constructor(message, { status = 0, retryable = true, code = "network_error" } = {}) {
    super(message);
    this.status = status;
    this.retryable = retryable;
    this.code = code;
  }
}

function storeError(xhr) {
  const status = xhr.status;
  // S3 answers XML, our local store JSON; keep whichever message is readable.
  let message = `The storage server answered ${status}.`;
  try {
    const body = JSON.parse(xhr.responseText);
    if (body?.error?.message) message = body.error.message;
  } catch {
    const m = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
    if (m) message = m[1];
  }
  if (status === 413 || status === 400) {
    return new TransferError(status === 413 ? "This file is larger than the upload limit." : message, { status, retryable: false, code: "rejected" });
  }
  // 403: usually an expired URL, fixed by re-signing; 5xx/429: transient.
  return new TransferError(message, { status, retryable: true, code: status === 403 ? "expired" : "server_error" });
}

/**
 * Send `body` with XHR (fetch has no upload progress). Resolves with the XHR. A transfer
 * that makes no progress for STALL_MS is abandoned as a network error (and retried):
 * a half-dead connection would otherwise hang the upload forever.
 */
function send({ method, url, body, headers = {}, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let stalled = false;
    let watchdog = null;
    const arm = (ms = STALL_MS) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stalled = true;
        xhr.abort();
      }, ms);
    };
    const done = (fn) => (arg) => {
      clearTimeout(watchdog);
      fn(arg);
    };
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      arm();
      onProgress?.(e.loaded);
    });
    // Every byte is sent: give the server longer to answer (it may be storing a big part).
    xhr.upload.addEventListener("load", () => arm(STALL_MS * 5));
    xhr.addEventListener("load", done(() => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr) : reject(storeError(xhr)))));
    xhr.addEventListener("error", done(() => reject(new TransferError("The network connection was lost."))));
    xhr.addEventListener(
      "abort",
      done(() => reject(stalled ? new TransferError("The upload stalled.") : new DOMException("Upload cancelled", "AbortError"))),
    );
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    arm();
    xhr.send(body);
  });
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(new DOMException("Upload cancelled", "AbortError"));
      },
      { once: true },
    );
  });

function backoff(attempt) {
  const exp = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return exp / 2 + Math.random() * (exp / 2); // jitter so parallel parts don't retry in lockstep
}

function titleFromName(name) {
  const base = name.replace(/\.[^.]{1,5}$/, "").replace(/[_]+/g, " ").trim();
  return (base || "Untitled").slice(0, 200);
}

function guessType(file) {
  if (file.type) return file.type;
  const ext = file.name.split(".").pop()?.toLowerCase();
  return { mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", webm: "video/webm", mkv: "video/x-matroska", avi: "video/x-msvideo" }[ext] ?? "application/octet-stream";
}

// ------------------------------------------------------------------ one upload
/**
 * One file's journey: upload → confirm → start processing. Emits "change" events;
 * read `state`, `loaded`, `size`, `error`, `video`, `job`.
 */
export class Upload extends EventTarget {
  constructor(file, { userId, visibility = "public", title = null }) {
    super();
    this.file = file;
    this.userId = userId;
    this.visibility = visibility;
    this.title = title || titleFromName(file.name);
    // What the details form may change while the bytes travel; confirm sends them.
    this.description = "";
    this.publish = "now";
    this.publishAt = null;
    this.loudnessNormalization = true;
    this.size = file.size;
    this.loaded = 0;
    this.state = UploadState.QUEUED;
    this.error = null;
    this.video = null;
    this.job = null;
    this.resumed = false;
    this.fp = fingerprint(userId, file);
    this.controller = null;
    this.key = null;
    this.finishRetryable = false;
  }

  get percent() {
    return this.size ? Math.min(100, Math.floor((this.loaded / this.size) * 100)) : 0;
  }

  get resumable() {
    return this.state === UploadState.PAUSED;
  }

  _set(state, error = null) {
    this.state = state;
    this.error = error;
    this.dispatchEvent(new Event("change"));
  }

  _progress(loaded) {
    this.loaded = Math.min(this.size, loaded);
    this.dispatchEvent(new Event("progress"));
  }

  /** Run (or resume) the upload to the end. Never throws; the outcome is in `state`. */
  async run() {
    this.controller = new AbortController();
    const { signal } = this.controller;
    this._set(UploadState.UPLOADING);
    let key;
    try {
      const pending = loadStore()[this.fp];
      if (pending) {
        this.resumed = true;
        key = await this._multipart(pending, signal);
      } else {
        const ticket = await api.requestUpload({ filename: this.file.name, contentType: guessType(this.file), size: this.size });
        if (ticket.multipart) {
          const rec = {
            userId: this.userId,
            key: ticket.key,
            uploadId: ticket.multipart.upload_id,
            partSize: ticket.multipart.part_size,
            name: this.file.name,
            size: this.size,
            title: this.title,
            visibility: this.visibility,
            done: {},
            createdAt: new Date().toISOString(),
          };
          this._remember(rec);
          key = await this._multipart(rec, signal, ticket.multipart.parts);
        } else {
          key = await this._single(ticket, signal);
        }
      }
    } catch (err) {
      this._fail(err);
      return;
    }
    await this._finish(key);
  }

  /** True when the bytes are stored but confirming or starting processing failed for a
   * reason that may pass (network, server busy): "Try again" repeats only that step. */
  get canRetryFinish() {
    return this.state === UploadState.FAILED && this.finishRetryable && !this.job && (this.video || this.key);
  }

  /** Retry after a pause (network back, or the user pressed Resume). */
  resume() {
    if (this.state === UploadState.PAUSED) return this.run();
    if (this.canRetryFinish) return this._finish(this.key);
    return Promise.resolve();
  }

  /** Stop the upload; a multipart upload is aborted on the server. */
  async cancel() {
    this.controller?.abort();
    const rec = loadStore()[this.fp];
    this._forget();
    if (rec) {
      try {
        await api.abortMultipart({ key: rec.key, uploadId: rec.uploadId });
      } catch {
        // The server sweeps abandoned uploads.
      }
    }
    this._set(UploadState.CANCELLED);
  }

  _fail(err) {
    if (err?.name === "AbortError") return;
    if (err instanceof TransferError && err.retryable) {
      this._set(UploadState.PAUSED, "Connection problem — the upload is paused and will resume when the connection is back.");
    } else if (err instanceof api.ApiError && (err.status === 0 || err.status >= 500 || err.status === 429)) {
      this._set(UploadState.PAUSED, err.message);
    } else {
      this._forget();
      this._set(UploadState.FAILED, err?.message || "The upload failed.");
    }
  }

  _remember(rec) {
    const store = loadStore();
    store[this.fp] = rec;
    saveStore(store);
  }

  _forget() {
    const store = loadStore();
    delete store[this.fp];
    saveStore(store);
  }

  async _single(ticket, signal) {
    for (let attempt = 0; ; attempt += 1) {
      const form = new FormData();
      for (const [k, v] of Object.entries(ticket.single.fields)) form.append(k, v);
      form.append("file", this.file); // must be last: the store reads the fields first
      try {
        await send({ method: "POST", url: ticket.single.url, body: form, signal, onProgress: (n) => this._progress(n) });
        this._progress(this.size);
        return ticket.key;
      } catch (err) {
        if (err.name === "AbortError" || !err.retryable || attempt + 1 >= MAX_ATTEMPTS) throw err;
        this._progress(0);
        await sleep(backoff(attempt), signal);
        if (err.code === "expired") {
          // The signed form may have expired: ask for a new one (a new key; nothing was
          // written under the old one). The attempt count carries on, so this is bounded.
          const fresh = await api.requestUpload({ filename: this.file.name, contentType: guessType(this.file), size: this.size });
          if (!fresh.single) throw new TransferError("The upload could not be restarted.", { retryable: false });
          ticket = fresh;
        }
      }
    }
  }

  async _multipart(rec, signal, initialUrls = null) {
    const count = Math.max(1, Math.ceil(this.size / rec.partSize));
    const urls = new Map((initialUrls ?? []).map((p) => [p.part_number, p.url]));
    const todo = [];
    for (let n = 1; n <= count; n += 1) if (!rec.done[n]) todo.push(n);
    const partBytes = (n) => Math.min(rec.partSize, this.size - (n - 1) * rec.partSize);
    const inflight = new Map();
    const doneBytes = () => Object.keys(rec.done).reduce((sum, n) => sum + partBytes(Number(n)), 0);
    const report = () => this._progress(doneBytes() + [...inflight.values()].reduce((a, b) => a + b, 0));
    report();

    const sign = async (numbers) => {
      try {
        const parts = await api.signParts({ key: rec.key, uploadId: rec.uploadId, partNumbers: numbers });
        for (const p of parts) urls.set(p.part_number, p.url);
      } catch (err) {
        if (err instanceof api.ApiError && (err.status === 404 || err.status === 409 || err.status === 403)) {
          // The server no longer knows this upload (expired or swept): start over.
          this._forget();
          throw new TransferError("This interrupted upload expired on the server; please upload the file again.", { retryable: false });
        }
        throw err;
      }
    };

    const missing = todo.filter((n) => !urls.has(n));
    if (missing.length) await sign(missing);

    const uploadPart = async (n) => {
      for (let attempt = 0; ; attempt += 1) {
        const start = (n - 1) * rec.partSize;
        const blob = this.file.slice(start, start + partBytes(n));
        try {
          inflight.set(n, 0);
          const xhr = await send({
            method: "PUT",
            url: urls.get(n),
            body: blob,
            signal,
            onProgress: (loaded) => {
              inflight.set(n, loaded);
              report();
            },
          });
          inflight.delete(n);
          const etag = xhr.getResponseHeader("ETag");
          if (!etag) {
            throw new TransferError("The storage server did not return the part's ETag (check its CORS ExposeHeaders).", { retryable: false });
          }
          rec.done[n] = etag;
          this._remember(rec);
          report();
          return;
        } catch (err) {
          inflight.delete(n);
          report();
          if (err.name === "AbortError" || !err.retryable || attempt + 1 >= MAX_ATTEMPTS) throw err;
          await sleep(backoff(attempt), signal);
          // A fresh URL costs one small request and covers expiry after long pauses.
          await sign([n]);
        }
      }
    };

    // A fixed pool of workers pulling part numbers: at most PART_CONCURRENCY in flight.
    const queue = [...todo];
    const failures = [];
    const worker = async () => {
      while (queue.length && failures.length === 0) {
        const n = queue.shift();
        try {
          await uploadPart(n);
        } catch (err) {
          failures.push(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, queue.length) }, worker));
    if (failures.length) throw failures[0];

    const parts = Object.entries(rec.done)
      .map(([n, etag]) => ({ partNumber: Number(n), etag }))
      .sort((a, b) => a.partNumber - b.partNumber);
    try {
      await api.completeMultipart({ key: rec.key, uploadId: rec.uploadId, parts });
    } catch (err) {
      // Completed already (the answer to an earlier try was lost): the object is whole,
      // so go on to confirm instead of failing a finished upload.
      if (!(err instanceof api.ApiError && err.code === "upload_already_completed")) throw err;
    }
    this._forget();
    this._progress(this.size);
    return rec.key;
  }

  async _finish(key) {
    this.key = key ?? this.key;
    this.finishRetryable = false;
    try {
      if (!this.video) {
        this._set(UploadState.CONFIRMING);
        // A schedule whose time passed while the bytes travelled publishes nothing
        // unasked: the video is kept as a draft for the owner to decide.
        const lapsed = this.publish === "schedule" && !(Date.parse(this.publishAt) > Date.now() + 5000);
        this.video = await api.confirmUpload({
          key,
          title: this.title,
          description: this.description,
          visibility: this.visibility,
          publish: lapsed ? "draft" : this.publish,
          publishAt: this.publishAt,
        });
      }
      this._set(UploadState.STARTING);
      this.job = await api.createJob(this.video.id, { loudnessNormalization: this.loudnessNormalization });
      this._set(UploadState.DONE);
    } catch (err) {
      // The bytes are stored and confirming is idempotent, so a transient failure can be
      // retried; a rejected file (413/415/404...) cannot.
      this.finishRetryable = err instanceof api.ApiError && (err.status === 0 || err.status === 429 || err.status >= 500 || Boolean(this.video));
      this._set(UploadState.FAILED, err.message || "Could not start processing.");
    }
  }
}

// ------------------------------------------------------------------ the queue
/**
 * Runs uploads two files at a time and resumes paused ones when the browser comes back
 * online. Emits "add" and "change" events.
 */
export class UploadQueue extends EventTarget {
  constructor({ concurrency = 2 } = {}) {
    super();
    this.concurrency = concurrency;
    this.uploads = [];
    this.running = 0;
    this._online = () => {
      for (const u of this.uploads) if (u.state === UploadState.PAUSED) this._schedule(u, true);
    };
    window.addEventListener("online", this._online);
  }

  /** Whether this very file is already being uploaded by this user. */
  isActive(file, userId) {
    const fp = fingerprint(userId, file);
    return this.uploads.some((u) => u.fp === fp && ![UploadState.DONE, UploadState.FAILED, UploadState.CANCELLED].includes(u.state));
  }

  add(file, options) {
    const upload = new Upload(file, options);
    this.uploads.push(upload);
    upload.addEventListener("change", () => this.dispatchEvent(new CustomEvent("change", { detail: upload })));
    this.dispatchEvent(new CustomEvent("add", { detail: upload }));
    this._pump();
    return upload;
  }

  _schedule(upload, resume = false) {
    if (resume) upload._set(UploadState.QUEUED);
    this._pump();
  }

  resume(upload) {
    if (upload.state === UploadState.PAUSED) this._schedule(upload, true);
    else upload.resume();
  }

  _pump() {
    while (this.running < this.concurrency) {
      const next = this.uploads.find((u) => u.state === UploadState.QUEUED);
      if (!next) return;
      this.running += 1;
      next.run().finally(() => {
        this.running -= 1;
        this._pump();
      });
    }
  }

  /** Stop listening for "online"; in-flight uploads continue in the background. */
  dispose() {
    window.removeEventListener("online", this._online);
  }
}

/** The one upload queue of this tab: uploads keep going while the user browses. */
export const uploads = new UploadQueue();

window.addEventListener("beforeunload", (event) => {
  const busy = uploads.uploads.some((u) => [UploadState.UPLOADING, UploadState.CONFIRMING, UploadState.STARTING, UploadState.QUEUED].includes(u.state));
  if (busy) {
    // Large uploads can resume after a reload, but warn anyway: leaving stops them.
    event.preventDefault();
    event.returnValue = "";
  }
});
