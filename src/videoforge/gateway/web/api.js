// Every call to the VideoForge API lives in this module, so that a change in the wire
// format is fixed in one place. Errors always surface as ApiError with the server's
// stable {"error": {"code", "message"}} fields.
//
// Tokens: the access token is kept in memory only (a page reload gets a new one from the
// refresh token), the refresh token in browser storage so a session survives reloads
// (see token-store.js).
import * as tokens from "./token-store.js";
import { sendView } from "./view-count.js";

const REFRESH_KEY = tokens.STORAGE_KEY;
const REFRESH_EARLY_SECONDS = 60;
/** 401 codes that mean "wrong password typed", not "your session is over". */
const CREDENTIAL_ERRORS = new Set(["invalid_credentials"]);

export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null, details = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

const FALLBACK_MESSAGES = {
  400: "The request was not valid.",
  401: "Please log in to continue.",
  403: "You are not allowed to do that.",
  404: "Not found.",
  409: "Someone else changed this at the same time. Reload and try again.",
  413: "That file is too large.",
  415: "That file type is not supported.",
  429: "Too many requests. Please wait a moment and try again.",
  500: "Something went wrong on our side. Please try again.",
  502: "The service is temporarily unavailable. Please try again.",
  503: "The service is temporarily unavailable. Please try again.",
};

async function errorFrom(res) {
  let code = "http_error";
  let message = FALLBACK_MESSAGES[res.status] ?? `Request failed (${res.status}).`;
  let details = null;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details ?? null;
    }
  } catch {
    // Not JSON (a proxy's error page): keep the generic message.
  }
  const retryAfter = Number(res.headers.get("Retry-After")) || null;
  if (res.status === 429 && retryAfter) {
    message = `${message} Try again in ${retryAfter} s.`;
  }
  return new ApiError(res.status, code, message, { retryAfter, details });
}

// ------------------------------------------------------------------ session state
let accessToken = null;
let accessExpiresAt = 0;
let currentUser = null;
let refreshTimer = null;
let refreshInFlight = null;
const sessionListeners = new Set();

/** Subscribe to session changes: fn({user, reason}). Returns an unsubscribe function. */
export function onSessionChange(fn) {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

function emit(reason) {
  for (const fn of sessionListeners) fn({ user: currentUser, reason });
}

/** The signed-in user ({id, email, display_name, is_admin}) or null. */
export function user() {
  return currentUser;
}

const storedRefresh = tokens.hint;

/** Take new tokens; resolves when the refresh token is stored for every tab. */
function applyTokens(body) {
  accessToken = body.access_token;
  const ttl = Number(body.expires_in) || 900;
  accessExpiresAt = Date.now() + ttl * 1000;
  if (body.user) currentUser = body.user;
  clearTimeout(refreshTimer);
  // Refresh a little before expiry so long-lived pages (SSE, uploads) keep a valid token.
  const delay = Math.max(5, ttl - REFRESH_EARLY_SECONDS) * 1000;
  refreshTimer = setTimeout(() => {
    refreshSession().catch(() => {});
  }, delay);
  return body.refresh_token ? tokens.write(body.refresh_token) : Promise.resolve();
}

function clearSession(reason) {
  const hadUser = currentUser !== null;
  accessToken = null;
  accessExpiresAt = 0;
  currentUser = null;
  clearTimeout(refreshTimer);
  tokens.write(null);
  // Nobody to tell when no one was signed in (e.g. a stale token found at page load).
  if (hadUser) emit(reason);
}

/**
 * Run `fn` while holding a lock shared by every tab of this site. Refresh tokens rotate
 * on use, so two tabs refreshing with the same token at once would make the server see
 * a reused token; serialising means the second tab reads the already rotated token.
 */
function withTabLock(fn) {
  if (navigator.locks?.request) return navigator.locks.request("vf.refresh", fn);
  return fn();
}

/** Exchange the stored refresh token for new tokens (one request at a time). */
export function refreshSession() {
  if (refreshInFlight) return refreshInFlight;
  if (!storedRefresh()) return Promise.resolve(false);
  refreshInFlight = withTabLock(async () => {
    // Read inside the lock, from the store every tab sees at once: another tab may have
    // just rotated the token.
    const token = await tokens.read();
    if (!token) {
      clearSession("expired");
      return false;
    }
    try {
      const body = await request("POST", "/api/auth/refresh", {
        body: { refresh_token: token },
        auth: false,
      });
      const hadUser = currentUser !== null;
      await applyTokens(body); // stored before the lock is released
      // retry: false — a 401 here must not wait on the refresh that is running now.
      if (!body.user) currentUser = await request("GET", "/api/auth/me", { retry: false });
      if (!hadUser) emit("restored");
      return true;
    } catch (err) {
      // Only a definite "no" from the server ends the session; a network blip does not.
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        clearSession("expired");
      }
      return false;
    }
  }).finally(() => {
    refreshInFlight = null;
  });
  return refreshInFlight;
}

// Logging out in one tab logs out every tab (the refresh token is shared).
window.addEventListener("storage", (event) => {
  if ((event.key === REFRESH_KEY || event.key === null) && !storedRefresh() && currentUser) {
    clearSession("logout");
  }
});

/** On page load: resume the session from the stored refresh token, if any. */
export async function restoreSession() {
  if (!storedRefresh()) return null;
  await refreshSession();
  return currentUser;
}

/** A valid access token (refreshing first if it is about to expire), or null. */
export async function freshAccessToken() {
  if (accessToken && Date.now() < accessExpiresAt - 10_000) return accessToken;
  if (storedRefresh()) await refreshSession();
  return accessToken;
}

// ------------------------------------------------------------------ requests
function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === "") continue;
    params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * One JSON API call. A 401 triggers one refresh and one retry; if that fails too the
 * session ends ("expired") and the app sends the user to the login page.
 */
export async function request(method, path, { body, raw, query, auth = true, retry = true, signal, headers: extra, keepalive = false } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  let res;
  try {
    res = await fetch(withQuery(path, query), {
      method,
      headers,
      // `raw` (a File or Blob) is sent as it is, with the caller's Content-Type.
      body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
      signal,
      keepalive, // lets a request (logout) finish even if the page is being left
      credentials: "same-origin",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Could not reach the server. Check your connection and try again.");
  }
  if (!res.ok) {
    const error = await errorFrom(res);
    // A 401 about the token (expired, revoked) is fixed by refreshing; a 401 about a
    // password the user typed (e.g. the current password when changing it) is not.
    const tokenProblem = res.status === 401 && auth && !CREDENTIAL_ERRORS.has(error.code);
    if (tokenProblem && retry && storedRefresh() && (await refreshSession())) {
      return request(method, path, { body, raw, query, auth, retry: false, signal, headers: extra });
    }
    if (tokenProblem && currentUser) clearSession("expired");
    throw error;
  }
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : null;
}

// ------------------------------------------------------------------ accounts
/**
 * Create an account and sign in. With Cognito the account must first be confirmed with
 * an e-mailed code: then this resolves {confirmationRequired: true} and nobody is signed in.
 */
export async function signup({ email, password, displayName }) {
  const body = await request("POST", "/api/auth/signup", {
    body: { email, password, ...(displayName ? { display_name: displayName } : {}) },
    auth: false,
  });
  if (body.confirmation_required || !body.access_token) {
    return { confirmationRequired: true, confirmation: body.confirmation || "code" };
  }
  await finishLogin(body);
  return { user: currentUser };
}

/** Confirm a sign-up with the code sent by e-mail (Cognito). */
export const confirmSignup = ({ email, code }) =>
  request("POST", "/api/auth/confirm", { body: { email, code }, auth: false });

/** Ask for a password-reset mail (always "accepted": the server never says whether the
 * address has an account). */
export const forgotPassword = (email) =>
  request("POST", "/api/auth/password/forgot", { body: { email }, auth: false });

/** Set a new password with a mailed link's token. */
export const resetPassword = ({ token, password }) =>
  request("POST", "/api/auth/password/reset", { body: { token, password }, auth: false });

/** Use a mailed confirmation link (sign-up address, or a new address). */
export const confirmEmail = (token) =>
  request("POST", "/api/auth/confirm", { body: { token }, auth: false });

/** Ask for the confirmation mail again. */
export const resendConfirmation = (email) =>
  request("POST", "/api/auth/confirm/resend", { body: { email }, auth: false });

/** The signed-in user afresh, with storage figures ({storage_used_bytes, ...}). */
export async function me() {
  currentUser = { ...(currentUser || {}), ...(await request("GET", "/api/auth/me")) };
  emit("profile");
  return currentUser;
}

/** Change the display name and/or ask to move to a new address (needs the password). */
export async function updateMe(changes) {
  currentUser = { ...(currentUser || {}), ...(await request("PATCH", "/api/auth/me", { body: changes })) };
  emit("profile");
  return currentUser;
}

/** Delete the account and everything of it; the session ends. */
export async function deleteAccount(password) {
  await request("DELETE", "/api/auth/me", { body: { password } });
  clearSession("deleted");
}

/** Change the password; every other session ends and this one gets fresh tokens. */
export async function changePassword({ currentPassword, newPassword }) {
  const body = await request("POST", "/api/auth/password", {
    body: { current_password: currentPassword, new_password: newPassword },
  });
  if (body.access_token) await applyTokens(body);
  emit("password");
  return currentUser;
}

/** Sign in with email and password. */
export async function login({ email, password }) {
  const body = await request("POST", "/api/auth/login", { body: { email, password }, auth: false });
  await finishLogin(body);
  return currentUser;
}

async function finishLogin(body) {
  await applyTokens(body);
  if (!body.user) currentUser = await request("GET", "/api/auth/me");
  emit("login");
}

/** Revoke the refresh token on the server (best effort) and forget the session. */
export async function logout() {
  const token = storedRefresh() ? await tokens.read() : null;
  const access = accessToken;
  // Forget locally first: leaving the page mid-request must not leave a live session.
  clearSession("logout");
  if (!token) return;
  try {
    await request("POST", "/api/auth/logout", {
      body: { refresh_token: token },
      auth: false,
      headers: access ? { Authorization: `Bearer ${access}` } : {},
      keepalive: true,
    });
  } catch {
    // Best effort: the refresh token is gone from this browser and expires on its own.
  }
}

// ------------------------------------------------------------------ gallery
/** One page of videos: {items, total, totalExact, page, perPage, pages, hasNext, nextCursor}.
 * Past the gallery's count cap `total` is a lower bound (`totalExact` false) and
 * `pages` is null: the pager then shows "Page N" and follows `next_cursor`. */
export async function listVideos(params = {}) {
  const body = await request("GET", "/api/gallery/videos", { query: params });
  return normalisePage(body, params);
}

function normalisePage(body, params) {
  const items = Array.isArray(body) ? body : (body.items ?? body.videos ?? body.results ?? []);
  const perPage = Number(body.per_page ?? params.per_page ?? items.length) || 1;
  const page = Number(body.page ?? params.page ?? 1);
  const total = body.total ?? null;
  const totalExact = body.total_exact !== false;
  const pages = body.pages ?? (total !== null && totalExact ? Math.max(1, Math.ceil(total / perPage)) : null);
  // Page numbers stop at the counted rows (the API answers page_too_deep past them).
  const reachable = total !== null && !totalExact ? Math.ceil(total / perPage) : null;
  const more = "next_cursor" in body ? body.next_cursor !== null : pages !== null ? page < pages : items.length === perPage;
  const hasNext = more && (reachable === null || page < reachable);
  return { items, total, totalExact, page, perPage, pages, hasNext, nextCursor: body.next_cursor ?? null };
}

export const getVideo = (id) => request("GET", `/api/gallery/videos/${encodeURIComponent(id)}`);

/** Update title/description/visibility/comment_policy/publish (only the given fields). */
export const updateVideo = (id, changes) =>
  request("PUT", `/api/gallery/videos/${encodeURIComponent(id)}`, { body: changes });

/** Show candidate `number` (1-based, of video.thumbnail_candidates) as the thumbnail. */
export const chooseThumbnail = (id, number) =>
  request("PUT", `/api/gallery/videos/${encodeURIComponent(id)}/thumbnail`, { body: { candidate: number } });

/** Upload an image (JPEG, PNG or WebP) as the thumbnail; the server re-encodes it. */
export const uploadThumbnail = (id, file) =>
  request("PUT", `/api/gallery/videos/${encodeURIComponent(id)}/thumbnail/image`, {
    raw: file,
    headers: { "Content-Type": file.type || "application/octet-stream" },
  });

export const deleteVideo = (id) => request("DELETE", `/api/gallery/videos/${encodeURIComponent(id)}`);

const captionsPath = (id, language) =>
  `/api/gallery/videos/${encodeURIComponent(id)}/captions${language === undefined ? "" : `/${encodeURIComponent(language)}`}`;

/** A video's caption tracks: {items: [{language, label, source, url, cues}]}. */
export const listCaptions = (id) => request("GET", captionsPath(id));

/** Upload an SRT or WebVTT file as `language`'s captions (replacing that language's). */
export function putCaption(id, language, file, label) {
  const form = new FormData();
  form.append("file", file, file.name || "captions.vtt");
  if (label) form.append("label", label);
  return request("PUT", captionsPath(id, language), { raw: form });
}

export const deleteCaption = (id, language) => request("DELETE", captionsPath(id, language));

/** Short-lived playback URLs: {hls, renditions: [{quality, width, height, url}], thumbnail, preview}. */
export const streamUrls = (id) => request("GET", `/api/gallery/stream/${encodeURIComponent(id)}`);

/** Count a view: {counted}. Sent again after Retry-After while the service is briefly
 * unavailable (see view-count.js); the last error is thrown. */
export async function countView(id) {
  const outcome = await sendView(async () => {
    try {
      return { status: 202, result: await request("POST", `/api/gallery/videos/${encodeURIComponent(id)}/views`, { body: {} }) };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return { status: err.status, retryAfter: err.retryAfter, error: err };
    }
  });
  if (outcome.error) throw outcome.error;
  return outcome.result;
}

// ------------------------------------------------------------------ uploads
/** Ask for a presigned upload: single ({method, url, fields|headers, key}) or multipart. */
export const requestUpload = ({ filename, contentType, size }) =>
  request("POST", "/api/upload/url", { body: { filename, content_type: contentType, size } });

/** Fresh URLs for some parts of a multipart upload (after expiry or on resume). */
export async function signParts({ key, uploadId, partNumbers }) {
  const body = await request("POST", "/api/upload/multipart/parts", {
    body: { key, upload_id: uploadId, part_numbers: partNumbers },
  });
  return body.parts ?? body;
}

export const completeMultipart = ({ key, uploadId, parts }) =>
  request("POST", "/api/upload/multipart/complete", {
    body: { key, upload_id: uploadId, parts: parts.map((p) => ({ part_number: p.partNumber, etag: p.etag })) },
  });

export const abortMultipart = ({ key, uploadId }) =>
  request("POST", "/api/upload/multipart/abort", { body: { key, upload_id: uploadId } });

/** Turn an uploaded object into a video (status "uploaded"). Safe to repeat. */
export const confirmUpload = ({ key, title, description, visibility, publish, publishAt }) =>
  request("POST", "/api/upload/confirm", {
    body: {
      key,
      title,
      ...(description ? { description } : {}),
      ...(visibility ? { visibility } : {}),
      ...(publish ? { publish } : {}),
      ...(publish === "schedule" && publishAt ? { publish_at: publishAt } : {}),
    },
  });

// ------------------------------------------------------------------ jobs
/** Start processing; `loudnessNormalization: false` keeps the audio's own level. */
export const createJob = (videoId, { loudnessNormalization = true } = {}) =>
  request("POST", "/api/jobs", {
    body: { video_id: videoId, ...(loudnessNormalization ? {} : { loudness_normalization: false }) },
  });

/**
 * Import a video from an http(s) URL. `idempotencyKey` (one per form submission) makes a
 * retried request return the first job instead of importing twice.
 */
export const importUrl = ({ sourceUrl, title, idempotencyKey }) =>
  request("POST", "/api/jobs", {
    body: { source_url: sourceUrl, ...(title ? { title } : {}) },
    headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {},
  });

/** The caller's jobs, newest first. */
export async function listJobs(params = { limit: 100 }) {
  const body = await request("GET", "/api/jobs", { query: params });
  return Array.isArray(body) ? body : (body.items ?? body.jobs ?? []);
}

export const getJob = (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`);
export const cancelJob = (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
export const retryJob = (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/retry`);

/** The SSE URL for a job (EventSource cannot send headers, so the token rides in the query). */
export async function jobEventsUrl(id) {
  const token = await freshAccessToken();
  return withQuery(`/api/jobs/${encodeURIComponent(id)}/events`, { access_token: token });
}

// ------------------------------------------------------------------ comments, ratings
const enc = encodeURIComponent;

/** Top-level comments {items, next_cursor, comment_policy, comments_count}. */
export const listComments = (videoId, { sort = "newest", cursor = null, limit = 20, status = null } = {}) =>
  request("GET", `/api/gallery/videos/${enc(videoId)}/comments`, {
    query: { sort, limit, ...(cursor ? { cursor } : {}), ...(status ? { status } : {}) },
  });

export const listReplies = (commentId, { cursor = null, limit = 20 } = {}) =>
  request("GET", `/api/gallery/comments/${enc(commentId)}/replies`, {
    query: { limit, ...(cursor ? { cursor } : {}) },
  });

export const postComment = (videoId, { text, parentId = null }) =>
  request("POST", `/api/gallery/videos/${enc(videoId)}/comments`, {
    body: parentId ? { text, parent_id: parentId } : { text },
  });

/** One comment; null when it is gone (404). */
export const getComment = async (id) => {
  try {
    return await request("GET", `/api/gallery/comments/${enc(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
};
export const editComment = (id, text) => request("PATCH", `/api/gallery/comments/${enc(id)}`, { body: { text } });
export const deleteComment = (id) => request("DELETE", `/api/gallery/comments/${enc(id)}`);
export const pinComment = (id, pinned) =>
  request("POST", `/api/gallery/comments/${enc(id)}/${pinned ? "pin" : "unpin"}`, { body: {} });
export const reviewComment = (id, approve) =>
  request("POST", `/api/gallery/comments/${enc(id)}/${approve ? "approve" : "reject"}`, { body: {} });

/** rating: "like" | "dislike" | "none"; answers {likes, dislikes, my_rating}. */
export const rateVideo = (videoId, rating) =>
  request("PUT", `/api/gallery/videos/${enc(videoId)}/rating`, { body: { rating } });

/** kind: "video" | "comment". */
export const report = (kind, id, { reason, note = null }) =>
  request("POST", `/api/gallery/${kind === "video" ? "videos" : "comments"}/${enc(id)}/reports`, {
    body: note ? { reason, note } : { reason },
  });

// ------------------------------------------------------------------ moderation (admins)
export const moderationReports = ({ page = 1, perPage = 20 } = {}) =>
  request("GET", "/api/gallery/moderation/reports", { query: { page, per_page: perPage } });
export const dismissReports = (targetType, targetId) =>
  request("POST", `/api/gallery/moderation/reports/${enc(targetType)}/${enc(targetId)}/dismiss`, { body: {} });
export const setVideoHidden = (videoId, hidden) =>
  request("POST", `/api/gallery/moderation/videos/${enc(videoId)}/${hidden ? "hide" : "unhide"}`, { body: {} });
export const moderatorDeleteComment = (commentId) =>
  request("POST", `/api/gallery/moderation/comments/${enc(commentId)}/delete`, { body: {} });
/** scope: "comment" | "upload". */
export const blockUser = (userId, scope) =>
  request("PUT", `/api/gallery/moderation/blocks/${enc(scope)}`, { query: { user_id: userId }, body: {} });
/** Blocked accounts, newest first: {items: [{user_id, scope, reason, created_by, created_at}]}. */
export const moderationBlocks = () => request("GET", "/api/gallery/moderation/blocks");
export const unblockUser = (userId, scope) =>
  request("DELETE", `/api/gallery/moderation/blocks/${enc(scope)}`, { query: { user_id: userId } });
export const moderationActions = ({ cursor = null, limit = 50 } = {}) =>
  request("GET", "/api/gallery/moderation/actions", { query: { limit, ...(cursor ? { cursor } : {}) } });

// ------------------------------------------------------------------ playlists
// `ref` is a playlist id, or "watch-later" for the caller's own Watch later.
/** The caller's playlists (Watch later first); with videoId each has contains_video. */
export const myPlaylists = ({ videoId = null } = {}) =>
  request("GET", "/api/gallery/playlists", { query: videoId ? { video_id: videoId } : {} });
/** Someone's public playlists (all of them for themselves). */
export const playlistsOf = (ownerId) => request("GET", "/api/gallery/playlists", { query: { owner: ownerId } });
export const getPlaylist = (ref) => request("GET", `/api/gallery/playlists/${enc(ref)}`);
export const createPlaylist = ({ title, description = "", visibility = "private" }) =>
  request("POST", "/api/gallery/playlists", { body: { title, description, visibility } });
export const updatePlaylist = (ref, changes) => request("PATCH", `/api/gallery/playlists/${enc(ref)}`, { body: changes });
export const deletePlaylist = (ref) => request("DELETE", `/api/gallery/playlists/${enc(ref)}`);
/** One page of entries in order: {playlist, items: [{position, available, video_id, video}], next_cursor}. */
export const playlistVideos = (ref, { cursor = null, limit = 50 } = {}) =>
  request("GET", `/api/gallery/playlists/${enc(ref)}/videos`, { query: { limit, ...(cursor ? { cursor } : {}) } });
/** Append (adding one already there changes nothing: {added: false}). */
export const addToPlaylist = (ref, videoId) =>
  request("POST", `/api/gallery/playlists/${enc(ref)}/videos`, { body: { video_id: videoId } });
export const removeFromPlaylist = (ref, videoId) =>
  request("DELETE", `/api/gallery/playlists/${enc(ref)}/videos/${enc(videoId)}`);
/** position: the new 0-based place. */
export const movePlaylistVideo = (ref, videoId, position) =>
  request("POST", `/api/gallery/playlists/${enc(ref)}/videos/${enc(videoId)}/move`, { body: { position } });
