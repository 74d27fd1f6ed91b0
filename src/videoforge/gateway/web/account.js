// /account: who is signed in, and a password change.
import * as api from "./api.js";
import { confirmDialog, formatBytes, h, toast, uid } from "./dom.js";
import { navigate } from "./router.js";

function passwordField(label, name, autocomplete, hint) {
  const id = uid("pw");
  const hintId = hint ? `${id}-hint` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, type: "password", autocomplete, required: true, "aria-describedby": hintId }),
    hint ? h("p", { class: "field__hint", id: hintId }, hint) : null,
  );
}

/** /account */
export function accountView(main) {
  const user = api.user();
  if (!user) {
    navigate(`/login?next=${encodeURIComponent("/account")}`, { replace: true });
    return;
  }
  document.title = "Your account · VideoForge";
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--primary" }, "Change password");
  const form = h(
    "form",
    { class: "account-form", "aria-labelledby": "pw-heading" },
    h("h2", { id: "pw-heading" }, "Change password"),
    passwordField("Current password", "current", "current-password"),
    passwordField("New password", "new", "new-password", "At least 8 characters; not a common password, your e-mail address or your name. Other devices will be signed out."),
    passwordField("Repeat the new password", "repeat", "new-password"),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const current = form.elements.current.value;
    const next = form.elements.new.value;
    const problem = !current
      ? "Enter your current password."
      : next.length < 8
        ? "Choose a new password of at least 8 characters."
        : next !== form.elements.repeat.value
          ? "The new passwords do not match."
          : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      await api.changePassword({ currentPassword: current, newPassword: next });
      form.reset();
      toast("Password changed. Your other devices have been signed out.");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  main.append(
    h("h1", {}, "Your account"),
    h("section", { class: "panel account" }, facts(user)),
    h("section", { class: "panel account" }, profileForm(user)),
    h("section", { class: "panel account" }, emailForm(user)),
    h("section", { class: "panel account" }, form),
    h("section", { class: "panel account account--danger" }, deleteForm()),
  );
  // Fresh figures (storage use, a pending address): the session's copy may be old.
  api
    .me()
    .then((fresh) => main.querySelector(".account__facts")?.replaceWith(facts(fresh)))
    .catch(() => {});
}

function storageText(user) {
  if (user.storage_used_bytes == null) return "—";
  const used = formatBytes(user.storage_used_bytes);
  if (user.storage_quota_bytes == null) return `${used} (no limit)`;
  const share = user.storage_quota_bytes > 0
    ? Math.min(100, Math.round((100 * user.storage_used_bytes) / user.storage_quota_bytes))
    : 100;
  return `${used} of ${formatBytes(user.storage_quota_bytes)} (${share}%)`;
}

function facts(user) {
  return h(
    "dl",
    { class: "account__facts" },
    h("dt", {}, "Email"),
    h("dd", { "data-field": "email" }, user.email || "—"),
    user.pending_email
      ? [h("dt", {}, "New address"), h("dd", { "data-field": "pending-email" }, `${user.pending_email} (waiting for you to open the link we mailed there)`)]
      : null,
    h("dt", {}, "Display name"),
    h("dd", { "data-field": "display-name" }, user.display_name || "—"),
    h("dt", {}, "Storage used"),
    h("dd", { "data-field": "storage" }, storageText(user)),
    user.is_admin
      ? [h("dt", {}, "Role"), h("dd", {}, "Administrator · ", h("a", { href: "/admin/storage" }, "Storage per user"))]
      : null,
  );
}

function textField(label, name, { type = "text", autocomplete, value = "", required = false, hint } = {}) {
  const id = uid("f");
  const hintId = hint ? `${id}-hint` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, type, autocomplete, value, required, maxlength: 100, "aria-describedby": hintId }),
    hint ? h("p", { class: "field__hint", id: hintId }, hint) : null,
  );
}

function refreshFacts(user) {
  document.querySelector(".account__facts")?.replaceWith(facts(user));
}

function profileForm(user) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--primary" }, "Save name");
  const form = h(
    "form",
    { class: "account-form", "aria-labelledby": "name-heading" },
    h("h2", { id: "name-heading" }, "Display name"),
    textField("Display name", "display_name", {
      autocomplete: "nickname",
      value: user.display_name || "",
      hint: "Shown on your videos and comments. Leave it empty to appear as an anonymous user.",
    }),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const fresh = await api.updateMe({ display_name: form.elements.display_name.value.trim() || null });
      // New access tokens carry the new name (it shows on what you post next).
      await api.refreshSession().catch(() => false);
      refreshFacts(fresh);
      toast("Display name saved.");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function emailForm() {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--primary" }, "Change address");
  const form = h(
    "form",
    { class: "account-form", "aria-labelledby": "email-heading" },
    h("h2", { id: "email-heading" }, "E-mail address"),
    textField("New address", "email", { type: "email", autocomplete: "email", required: true, hint: "We mail a link there; your address changes when you open it." }),
    passwordField("Current password", "current", "current-password"),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const email = form.elements.email.value.trim();
    if (!email || !form.elements.email.checkValidity()) {
      error.textContent = "Enter a valid email address.";
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const fresh = await api.updateMe({ email, current_password: form.elements.current.value });
      form.reset();
      refreshFacts(fresh);
      toast(`We sent a confirmation link to ${email}.`);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function deleteForm() {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--danger" }, "Delete my account");
  const form = h(
    "form",
    { class: "account-form", "aria-labelledby": "delete-heading" },
    h("h2", { id: "delete-heading" }, "Delete account"),
    h("p", { class: "muted" }, "Your account, your videos and everything stored for them are deleted for good. This cannot be undone."),
    passwordField("Password", "password", "current-password"),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const password = form.elements.password.value;
    if (!password) {
      error.textContent = "Enter your password to confirm.";
      error.hidden = false;
      return;
    }
    const sure = await confirmDialog({
      title: "Delete your account?",
      message: "Your videos and everything of your account will be deleted for good.",
      confirmLabel: "Delete everything",
      danger: true,
    });
    if (!sure) return;
    submit.disabled = true;
    try {
      await api.deleteAccount(password);
      toast("Your account was deleted.");
      navigate("/", { replace: true });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
