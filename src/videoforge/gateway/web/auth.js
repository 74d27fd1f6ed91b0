// Log-in and sign-up pages.
import * as api from "./api.js";
import { h, uid } from "./dom.js";
import { checkMailNotice } from "./recovery.js";
import { navigate } from "./router.js";

/**
 * The post-login destination: `next` only when it stays on this site (no open redirect).
 * It is resolved the way the browser resolves a link and its origin compared with ours,
 * because a prefix test is not enough: "/\evil.example" is "//evil.example" to the URL
 * parser, and "javascript:" URLs have no origin at all.
 */
function safeNext(query) {
  const next = query.get("next");
  if (!next) return "/my";
  let url;
  try {
    url = new URL(next, window.location.origin);
  } catch {
    return "/";
  }
  if (url.origin !== window.location.origin) return "/";
  // "/.//evil.example" resolves here, to the path "//evil.example": handed on as a
  // link that is another site (and history.replaceState refuses it).
  if (url.pathname.startsWith("//")) return "/";
  return url.pathname + url.search + url.hash;
}

function field({ label, type, name, autocomplete, required = true, minlength, hint }) {
  const id = uid("f");
  const hintId = hint ? `${id}-hint` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", {
      id,
      name,
      type,
      autocomplete,
      required,
      minlength,
      "aria-describedby": hintId,
    }),
    hint ? h("p", { class: "field__hint", id: hintId }, hint) : null,
  );
}

function authForm({ mode, query }) {
  const isSignup = mode === "signup";
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h(
    "button",
    { type: "submit", class: "button button--primary button--block" },
    isSignup ? "Create account" : "Log in",
  );
  const form = h(
    "form",
    { class: "auth-form", novalidate: true, "aria-describedby": undefined },
    field({ label: "Email", type: "email", name: "email", autocomplete: "email" }),
    isSignup
      ? field({
          label: "Display name (optional)",
          type: "text",
          name: "display_name",
          autocomplete: "nickname",
          required: false,
        })
      : null,
    field({
      label: "Password",
      type: "password",
      name: "password",
      autocomplete: isSignup ? "new-password" : "current-password",
      minlength: isSignup ? 8 : undefined,
      hint: isSignup ? "At least 8 characters; not a common password, your e-mail address or your name." : null,
    }),
    error,
    submit,
    isSignup ? null : h("p", { class: "auth-form__aside" }, h("a", { href: "/forgot", "data-forgot": "" }, "Forgot your password?")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const data = new FormData(form);
    const email = String(data.get("email") || "").trim();
    const password = String(data.get("password") || "");
    const problem = !email || !form.elements.email.checkValidity()
      ? "Enter a valid email address."
      : !password
        ? "Enter your password."
        : isSignup && password.length < 8
          ? "Choose a password of at least 8 characters."
          : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      if (isSignup) {
        const result = await api.signup({ email, password, displayName: String(data.get("display_name") || "").trim() });
        if (result.confirmationRequired) {
          form.replaceWith(
            result.confirmation === "link" ? checkMailNotice(email) : confirmForm({ email, password, query }),
          );
          return;
        }
      } else {
        await api.login({ email, password });
      }
      navigate(safeNext(query), { replace: true });
    } catch (err) {
      error.textContent = err.message || "Something went wrong. Please try again.";
      if (err.code === "email_not_confirmed") error.replaceChildren(err.message, " ", checkMailNotice(email));
      error.hidden = false;
      form.elements.password.focus();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });
  return form;
}

/** Cognito sign-ups: enter the e-mailed code, then we log in with the same password. */
function confirmForm({ email, password, query }) {
  const id = uid("code");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const input = h("input", { id, name: "code", inputmode: "numeric", autocomplete: "one-time-code", required: true });
  const submit = h("button", { type: "submit", class: "button button--primary button--block" }, "Confirm and log in");
  const form = h(
    "form",
    { class: "auth-form" },
    h("p", { class: "notice", role: "status" }, `We sent a confirmation code to ${email}.`),
    h("div", { class: "field" }, h("label", { for: id }, "Confirmation code"), input),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await api.confirmSignup({ email, code: input.value.trim() });
      await api.login({ email, password });
      navigate(safeNext(query), { replace: true });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}

function authPage(main, query, mode) {
  const isSignup = mode === "signup";
  document.title = `${isSignup ? "Sign up" : "Log in"} · VideoForge`;
  if (api.user()) {
    navigate(safeNext(query), { replace: true });
    return;
  }
  const other = isSignup
    ? h("p", {}, "Already have an account? ", h("a", { href: `/login${query.toString() ? `?${query}` : ""}` }, "Log in"))
    : h("p", {}, "New here? ", h("a", { href: `/signup${query.toString() ? `?${query}` : ""}` }, "Create an account"));
  const notice = query.get("expired")
    ? h("p", { class: "notice", role: "status" }, "Your session has ended. Please log in again.")
    : query.get("reset")
      ? h("p", { class: "notice", role: "status" }, "Your password is changed. Log in with the new one.")
      : null;
  main.append(
    h(
      "section",
      { class: "auth-card" },
      h("h1", {}, isSignup ? "Create your account" : "Log in to VideoForge"),
      h(
        "p",
        { class: "muted" },
        isSignup ? "Upload, share and manage your videos." : "Welcome back.",
      ),
      notice,
      authForm({ mode, query }),
      other,
    ),
  );
}

/** /login */
export function loginView(main, _params, query) {
  return authPage(main, query, "login");
}

/** /signup */
export function signupView(main, _params, query) {
  return authPage(main, query, "signup");
}
