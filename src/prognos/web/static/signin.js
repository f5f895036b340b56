// Sign-in: check the key against the API, keep it in sessionStorage (this tab only), go on.
import { ApiError, api, setApiKey } from "./common.js";

const form = document.getElementById("signin-form");
const input = document.getElementById("api-key");
const error = document.getElementById("signin-error");

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "";
  // Only same-site paths: never bounce to another origin from a query parameter.
  return next.startsWith("/ui/") ? next : "/ui/fleet";
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = input.value.trim();
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  if (!key) {
    error.textContent = "Enter an API key.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await api("/api/v1/engines?limit=1", { key, signIn: false });
    setApiKey(key);
    location.assign(nextPage());
  } catch (err) {
    error.textContent = err instanceof ApiError && err.status === 401
      ? "This API key is not valid." : err.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    button.disabled = false;
  }
});
input.focus();
