// Live job progress. Server-Sent Events where possible; because browsers allow only ~6
// HTTP/1.1 connections per origin, at most MAX_STREAMS jobs are streamed at once and the
// rest are polled, so uploads and API calls never starve.
import * as api from "./api.js";

const MAX_STREAMS = 3;
const POLL_MS = 3000;
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
let openStreams = 0;

export const isFinal = (status) => FINAL.has(String(status).toUpperCase());

/**
 * Follow job `id`; `onUpdate(job)` gets partial or full job objects ({status, progress,
 * error_text...}) until the job is final. Returns a stop function.
 */
export function watchJob(id, onUpdate) {
  let stopped = false;
  let source = null;
  let pollTimer = null;
  let usesStream = false;
  let reconnects = 0;

  const deliver = (job) => {
    if (stopped || !job) return;
    onUpdate(job);
    if (job.status && isFinal(job.status)) stop();
  };

  const poll = async () => {
    if (stopped) return;
    try {
      deliver(await api.getJob(id));
    } catch (err) {
      if (err.status === 404) {
        stop();
        return;
      }
    }
    if (!stopped) pollTimer = setTimeout(poll, POLL_MS);
  };

  const onData = (event) => {
    if (!event.data) return;
    try {
      const data = JSON.parse(event.data);
      reconnects = 0;
      deliver(data.job ?? data);
    } catch {
      // Keep-alive comments and non-JSON lines carry no state.
    }
  };

  const openStream = async () => {
    const url = await api.jobEventsUrl(id);
    if (stopped) return;
    source = new EventSource(url);
    source.addEventListener("message", onData);
    for (const name of ["progress", "status", "job", "snapshot", "update", "end", "done"]) {
      source.addEventListener(name, onData);
    }
    source.addEventListener("error", () => {
      // The stream ends when the job ends (the server closes it) or on a network error.
      // Either way take over by hand: one poll tells which, then reconnect with a fresh token.
      source?.close();
      source = null;
      if (stopped) return;
      reconnects += 1;
      api
        .getJob(id)
        .then((job) => {
          deliver(job);
          if (!stopped) setTimeout(() => !stopped && openStream().catch(fallBackToPolling), Math.min(10_000, 1000 * reconnects));
        })
        .catch(fallBackToPolling);
    });
  };

  const fallBackToPolling = () => {
    if (stopped) return;
    releaseStream();
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_MS);
  };

  const releaseStream = () => {
    if (usesStream) {
      usesStream = false;
      openStreams -= 1;
    }
    source?.close();
    source = null;
  };

  function stop() {
    stopped = true;
    clearTimeout(pollTimer);
    releaseStream();
  }

  if (openStreams < MAX_STREAMS && typeof EventSource !== "undefined") {
    openStreams += 1;
    usesStream = true;
    openStream().catch(fallBackToPolling);
  } else {
    poll();
  }
  return stop;
}
