// The page's shell: hash routes to pages, the navigation, and the token form the API's 401 brings up.
// Routes: #/events[?filters], #/events/ID, #/feeds, #/feeds/new, #/feeds/NAME, #/feeds/NAME/edit,
// #/exceptions[/new|/NAME|/NAME/edit], #/webhooks[/NAME] (docs/ui.md).

import {onUnauthenticated, setToken, token} from "./api.js";
import {fill, h} from "./dom.js";
import * as events from "./events.js";
import * as exceptions from "./exceptions.js";
import * as feeds from "./feeds.js";
import * as webhooks from "./webhooks.js";

const PAGES = {events, feeds, exceptions, webhooks};

const main = document.getElementById("main");
let current = {page: null, cleanup: null, key: ""};

/** The route of a hash: its page, the path segments after it, and its query. */
export function parseRoute(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const [page = "events", ...rest] = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {page: PAGES[page] ? page : "events", rest, query: new URLSearchParams(query)};
}

function show() {
  const route = parseRoute(location.hash);
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === route.page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const module = PAGES[route.page];
  // A page that can show the new route in place (the events page opening a detail) keeps its state.
  if (current.page === module && module.update && module.update(route)) return;
  if (current.cleanup) current.cleanup();
  current = {page: module, cleanup: module.render(main, route) || null};
}

function askForToken(error) {
  const dialog = document.getElementById("token-dialog");
  if (dialog.open) return;
  const refused = token() !== "";
  const input = h("input", {type: "password", name: "token", id: "token-input", autocomplete: "off",
    required: true, "aria-describedby": "token-why"});
  const form = h("form", {method: "dialog", class: "token-form"},
    h("h2", {id: "token-title"}, "Sign in to this collector"),
    h("p", {id: "token-why", class: refused ? "error" : ""},
      refused ? `The collector refused that token: ${error.message}` : "The collector asks for a bearer token: a " +
        "viewer token to read, a consumer token to change things."),
    h("label", {for: "token-input"}, "Bearer token"), input,
    h("div", {class: "buttons"}, h("button", {type: "submit", class: "primary"}, "Sign in")));
  form.addEventListener("submit", () => {
    setToken(input.value.trim());
    current.page = null; // render again with the token
    show();
  });
  fill(dialog, form);
  dialog.showModal();
  input.focus();
}

onUnauthenticated(askForToken);
document.getElementById("sign-out").addEventListener("click", () => {
  setToken("");
  current.page = null;
  show();
});
document.getElementById("skip").addEventListener("click", () => main.focus());
window.addEventListener("hashchange", show);
if (!location.hash) history.replaceState(null, "", "#/events");
show();
