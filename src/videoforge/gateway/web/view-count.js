// Posting a view, through a short outage. While the gallery's cache or database is down
// it answers 503 with Retry-After and counts nothing; a player that gave up then would
// lose the view silently. Both players (the watch page and the embed) post their view
// through here: it is sent again after the server's Retry-After, a few times, in the
// background (playback never waits for it).

const ATTEMPTS = 4;
const DEFAULT_WAIT_SECONDS = 5;
const MAX_WAIT_SECONDS = 30;
/** Statuses that mean "not now", not "no": no answer at all, or the service unavailable. */
const RETRIED = new Set([0, 502, 503, 504]);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `send()` until it resolves an outcome `{status, retryAfter}` whose status is not
 * one to retry, or the attempts are used up; resolves that last outcome. `retryAfter`
 * is the server's Retry-After in seconds (null when it sent none).
 */
export async function sendView(send) {
  for (let attempt = 1; ; attempt += 1) {
    const outcome = await send();
    if (!RETRIED.has(outcome.status) || attempt >= ATTEMPTS) return outcome;
    const wait = Math.min(MAX_WAIT_SECONDS, outcome.retryAfter || DEFAULT_WAIT_SECONDS);
    await sleep(wait * 1000);
  }
}
