// Entry point: restores the session, wires the header and starts the router.
import { accountView } from "./account.js";
import * as api from "./api.js";
import { loginView, signupView } from "./auth.js";
import { toast } from "./dom.js";
import { galleryView } from "./gallery.js";
import { moderationView } from "./moderation.js";
import { myVideosView } from "./my-videos.js";
import { confirmEmailView, forgotView, resetView } from "./recovery.js";
import { myPlaylistsView, playlistView } from "./playlist-page.js";
import { navigate, route, start } from "./router.js";
import { storageAdminView } from "./storage-admin.js";
import { watchView } from "./watch.js";

route("/", galleryView);
route("/login", loginView);
route("/signup", signupView);
route("/my", myVideosView);
route("/watch/:id", watchView);
route("/playlist/:id", playlistView);
route("/playlists", myPlaylistsView);
route("/account", accountView);
route("/forgot", forgotView);
route("/reset", resetView);
route("/confirm-email", confirmEmailView);
route("/admin/storage", storageAdminView);
route("/moderation", moderationView);

function updateHeader() {
  const signedIn = api.user() !== null;
  for (const el of document.querySelectorAll("[data-auth]")) {
    el.hidden = el.dataset.auth === "admin" ? !api.user()?.is_admin : (el.dataset.auth === "user") !== signedIn;
  }
  const name = document.getElementById("account-name");
  const user = api.user();
  name.textContent = user ? user.display_name || user.email : "";
}

api.onSessionChange(({ reason }) => {
  updateHeader();
  if (reason === "expired") {
    toast("Your session has ended. Please log in again.", { kind: "error" });
    const here = window.location.pathname + window.location.search;
    if (!here.startsWith("/login")) {
      navigate(`/login?expired=1&next=${encodeURIComponent(here)}`, { replace: true });
    }
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  await api.logout();
  toast("You are logged out.");
  navigate("/");
});

async function boot() {
  try {
    await api.restoreSession();
  } catch (err) {
    console.warn("session restore failed", err);
  }
  updateHeader();
  await start();
}

boot();
