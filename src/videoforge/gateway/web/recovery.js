// Pages reached from mail: /forgot (ask for a reset link), /reset?token=… (choose a new
// password), /confirm-email?token=… (confirm a sign-up or a new address).
import * as api from "./api.js";
import { h, uid } from "./dom.js";
import { navigate } from "./router.js";

function card(main, title, ...children) {
  main.append(h("section", { class: "auth-card" }, h("h1", {}, title), ...children));
}

function inputField({ label, type, name, autocomplete, hint }) {
  const id = uid("f");
  const hintId = hint ? `${id}-hint` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, type, autocomplete, required: true, "aria-describedby": hintId }),
    hint ? h("p", { class: "field__hint", id: hintId }, hint) : null,
  );
}

function busy(button, on) {
  button.disabled = on;
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

/** /forgot */
export function forgotView(main, _params, query) {
  document.title = "Forgot your password · VideoForge";
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--primary button--block" }, "Send me a link");
  const form = h(
    "form",
    { class: "auth-form", novalidate: true },
    inputField({ label: "Email", type: "email", name: "email", autocomplete: "email" }),
    error,
    submit,
  );
  const email = form.elements.email;
  if (query.get("email")) email.value = query.get("email");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const address = email.value.trim();
    if (!address || !email.checkValidity()) {
      error.textContent = "Enter a valid email address.";
      error.hidden = false;
      return;
    }
    busy(submit, true);
    try {
      const answer = await api.forgotPassword(address);
      form.replaceWith(h("p", { class: "notice", role: "status" }, answer.message));
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      busy(submit, false);
    }
  });
  card(
    main,
    "Forgot your password?",
    h("p", { class: "muted" }, "Enter your address and we will mail you a link to choose a new password."),
    form,
    h("p", {}, h("a", { href: "/login" }, "Back to log in")),
  );
}

/** /reset?token=… */
export function resetView(main, _params, query) {
  document.title = "Choose a new password · VideoForge";
  const token = query.get("token") || "";
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button--primary button--block" }, "Set the new password");
  const form = h(
    "form",
    { class: "auth-form", novalidate: true },
    inputField({
      label: "New password",
      type: "password",
      name: "password",
      autocomplete: "new-password",
      hint: "At least 8 characters; not a common password, your e-mail address or your name. You will be signed out everywhere.",
    }),
    inputField({ label: "Repeat the new password", type: "password", name: "repeat", autocomplete: "new-password" }),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const password = form.elements.password.value;
    const problem = password.length < 8
      ? "Choose a password of at least 8 characters."
      : password !== form.elements.repeat.value
        ? "The passwords do not match."
        : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    busy(submit, true);
    try {
      await api.resetPassword({ token, password });
      if (api.user()) await api.logout();
      navigate("/login?reset=1", { replace: true });
    } catch (err) {
      error.textContent = err.message;
      if (["token_used", "token_expired", "token_invalid"].includes(err.code)) {
        error.append(" ", h("a", { href: "/forgot" }, "Ask for a new link"));
      }
      error.hidden = false;
    } finally {
      busy(submit, false);
    }
  });
  if (!token) {
    card(main, "Choose a new password", h("p", { class: "form-error", role: "alert" }, "This link is incomplete. ", h("a", { href: "/forgot" }, "Ask for a new link")));
    return;
  }
  card(main, "Choose a new password", form);
}

/** /confirm-email?token=… */
export async function confirmEmailView(main, _params, query) {
  document.title = "Confirm your address · VideoForge";
  const status = h("p", { class: "notice", role: "status" }, "Confirming…");
  card(main, "Confirm your address", status);
  try {
    await api.confirmEmail(query.get("token") || "");
  } catch (err) {
    status.className = "form-error";
    status.setAttribute("role", "alert");
    status.textContent = err.message;
    if (err.code === "token_expired" || err.code === "token_used") {
      status.append(" ", h("a", { href: "/login" }, "Log in"), " to ask for a new link, if you still need one.");
    }
    return;
  }
  status.textContent = "Your address is confirmed.";
  if (api.user()) {
    await api.me().catch(() => {});
    status.append(" ", h("a", { href: "/account" }, "Back to your account"));
  } else {
    status.append(" ", h("a", { href: "/login" }, "Log in"));
  }
}

/** A notice for local sign-ups: check your mail, with a way to send the link again. */
export function checkMailNotice(email) {
  const status = h("p", { class: "notice", role: "status" }, `We sent a confirmation link to ${email}. Open it to finish signing up.`);
  const again = h("button", { type: "button", class: "button button--ghost" }, "Send the link again");
  again.addEventListener("click", async () => {
    again.disabled = true;
    try {
      await api.resendConfirmation(email);
      status.textContent = `We sent a new link to ${email}.`;
    } catch (err) {
      status.textContent = err.message;
    } finally {
      again.disabled = false;
    }
  });
  return h("div", { class: "auth-form" }, status, again);
}
