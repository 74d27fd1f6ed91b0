// What a processing job looks like to its creator, in one place: the upload rows
// (upload-panel.js) and "My videos" (my-videos.js) both show describeJob(job).
//
// Source of truth: while a video has a job, the JOB is authoritative for everything about
// processing (state, queue position, progress, ETA, failure reason, whether a retry can
// help). The gateway reads it from the jobs table the worker writes, and streams it over
// GET /api/jobs/{id}/events. The gallery's video status is a copy applied later from the
// job's events, so it lags (a job COMPLETED a second ago may still be "processing" there)
// and is never merged in. The video's own status is used only for a video whose job the
// client does not know (see describeVideoWithoutJob).

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

export const jobStatus = (job) => String(job?.status ?? "").toUpperCase();
export const isFinalJob = (job) => FINAL.has(jobStatus(job));

/** "about 2 min left", "less than a minute left", "about 1 h 5 min left"; "" if unknown. */
export function formatEta(seconds) {
  const s = Number(seconds);
  if (seconds === null || seconds === undefined || !Number.isFinite(s) || s < 0) return "";
  if (s < 60) return "less than a minute left";
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `about ${hours} h ${rest} min left` : `about ${hours} h left`;
}

/** "next in the queue", "2nd in the queue", "23rd in the queue". */
export function formatQueuePosition(position) {
  const n = Number(position);
  if (!Number.isInteger(n) || n < 1) return "";
  if (n === 1) return "next in the queue";
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] ?? "th";
  return `${n}${suffix} in the queue`;
}

/**
 * The display state of a job: {phase, label, detail, progress (0-100 or null), error,
 * retryable, cancelling, final}. `phase` is one of queued, downloading, processing,
 * publishing, ready, failed, cancelled (used as a CSS/data-state hook).
 */
export function describeJob(job) {
  const s = jobStatus(job);
  const base = { detail: "", progress: null, error: null, retryable: false, cancelling: false, final: FINAL.has(s) };
  if (s === "COMPLETED") return { ...base, phase: "ready", label: "Ready" };
  if (s === "FAILED") {
    // The worker's own words (error_text) say what went wrong; "retryable" is the
    // gateway's decision (no retry for media or links that were refused for good).
    return { ...base, phase: "failed", label: "Failed", error: job.error_text || "Processing failed.", retryable: Boolean(job.retryable) };
  }
  if (s === "CANCELLED") return { ...base, phase: "cancelled", label: "Cancelled", retryable: job.retryable !== false };
  if (job.cancel_requested) return { ...base, phase: "processing", label: "Cancelling…", cancelling: true };
  const eta = formatEta(job.eta_seconds);
  if (s === "PENDING") {
    const place = formatQueuePosition(job.queue_position);
    return { ...base, phase: "queued", label: "Queued", detail: [place, eta].filter(Boolean).join(" · ") };
  }
  if (s === "DOWNLOADING") return { ...base, phase: "downloading", label: "Downloading", detail: eta };
  const progress = Math.max(0, Math.min(100, Math.round(Number(job.progress) || 0)));
  const detail = [`${progress}%`, eta].filter(Boolean).join(" · ");
  if (s === "UPLOADING") return { ...base, phase: "publishing", label: "Publishing", progress, detail };
  return { ...base, phase: "processing", label: "Processing", progress, detail };
}

/** A video the client knows no job for (processed long ago, or its job is beyond the
 * jobs page read): only then does the gallery's status speak. */
export function describeVideoWithoutJob(video) {
  const base = { detail: "", progress: null, error: null, retryable: false, cancelling: false, final: true };
  if (video.status === "ready") return { ...base, phase: "ready", label: "Ready" };
  if (video.status === "failed") return { ...base, phase: "failed", label: "Failed", error: video.failure_reason || "Processing failed." };
  if (video.status === "processing") return { ...base, phase: "processing", label: "Processing", final: false };
  return { ...base, phase: "uploaded", label: "Not processed yet" };
}
