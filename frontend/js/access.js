// Access to a server started with CURVELAB_API_TOKEN. The page asks for the token once (when the
// API answers 401) and keeps it for this tab. fetch sends it as a bearer header; EventSource
// cannot send headers, so the token is also traded for an HttpOnly session cookie that the
// browser sends with the event stream and with plain links such as the CSV download.
import { api, rememberToken, setUnauthorizedHandler, storedToken } from "./api.js";
import { element } from "./dom.js";

let renewal = null;

// Opens (or renews) the session cookie when the user gave a token; a tokenless page needs none.
// The cookie is renewed at half its life (counted here, so the two clocks need not agree), so
// links keep working on a page left open.
export async function openSession() {
  if (!storedToken()) return;
  const session = await api.openSession();
  clearTimeout(renewal);
  if (session && session.lifetime_seconds) {
    const halfLifeMilliseconds = Math.max(30, session.lifetime_seconds / 2) * 1000;
    renewal = setTimeout(() => openSession().catch(() => {}), halfLifeMilliseconds);
  }
}

// Shows the token form whenever the API answers 401; a refused stored token is forgotten.
export function mountTokenPrompt(root) {
  const input = element("input", {
    type: "password", id: "api-token", name: "api-token", autocomplete: "off", required: true,
  });
  const problem = element("p", { className: "token-problem", role: "alert" });
  const form = element("form", { className: "token-form" }, [
    element("label", { for: "api-token", text: "API token" }),
    input,
    element("button", { type: "submit", className: "primary", text: "Use token" }),
  ]);
  root.replaceChildren(
    element("h2", { id: "access-title", text: "This server needs its API token" }),
    element("p", { className: "explain",
      text: "Enter the value of CURVELAB_API_TOKEN that the server was started with. "
        + "It is kept for this browser tab only." }),
    form, problem);

  const show = (message) => {
    problem.textContent = message || "";
    root.hidden = false;
    input.focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    rememberToken(input.value.trim());
    try {
      await openSession();
    } catch (error) {
      if (error.status !== 401) show(error.message);
      return;
    }
    // Everything the page loaded so far was refused; starting again is simplest and exact.
    window.location.reload();
  });

  setUnauthorizedHandler((error) => {
    const hadToken = Boolean(storedToken());
    rememberToken(null);
    show(hadToken ? error.message : "");
  });
  return { show };
}
