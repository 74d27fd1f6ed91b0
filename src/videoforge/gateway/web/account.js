// /account: who is signed in, and a password change.
import * as api from "./api.js";
import { h, toast, uid } from "./dom.js";
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
    h(
      "section",
      { class: "panel account" },
      h(
        "dl",
        { class: "account__facts" },
        h("dt", {}, "Email"),
        h("dd", {}, user.email || "—"),
        h("dt", {}, "Display name"),
        h("dd", {}, user.display_name || "—"),
        user.is_admin ? [h("dt", {}, "Role"), h("dd", {}, "Administrator")] : null,
      ),
    ),
    h("section", { class: "panel account" }, form),
  );
}
