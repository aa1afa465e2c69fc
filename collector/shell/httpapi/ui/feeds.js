// The Threat Feeds page: every feed and its status, one feed's detail, the Add Feed and Edit forms
// (feedform.js), and each feed's actions.

import {download, get, post, remove} from "./api.js";
import {fill, h, notify, time} from "./dom.js";
import {feedForm} from "./feedform.js";

function conditions(feed) {
  const list = feed.errorConditions || [];
  if (!list.length) return h("span", {class: "ok"}, "none");
  return h("ul", {class: "conditions"}, list.map((condition) => h("li", {class: "error"},
    h("strong", {}, condition.type), `: ${condition.message}`, condition.count > 1 ? ` (${condition.count}×)` : "")));
}

async function act(what, action, after) {
  try {
    const answer = await action();
    notify(typeof what === "function" ? what(answer) : what);
  } catch (error) {
    notify(error.message, "error");
  }
  after();
}

function actionMenu(feed, refresh) {
  const name = feed.name;
  const path = `/feeds/${encodeURIComponent(name)}`;
  const enabled = feed.mode !== "Disabled";
  const menu = h("details", {class: "menu"});
  const close = () => menu.removeAttribute("open");
  const item = (label, handler, attributes = {}) => h("li", {},
    h("button", {type: "button", role: "menuitem", ...attributes, onclick: async () => {
      close();
      await handler();
    }}, label));
  fill(menu, h("summary", {"aria-label": `Actions for ${name}`}, "Actions"),
    h("ul", {role: "menu", "aria-label": `Actions for ${name}`},
      h("li", {}, h("a", {href: `#${path}`, role: "menuitem"}, "View")),
      h("li", {}, h("a", {href: `#${path}/edit`, role: "menuitem"}, "Edit")),
      item("Download manifest", () => download(`${path}/manifest`, `${name}.yaml`, "application/yaml")
        .catch((error) => notify(error.message, "error"))),
      feed.push ? null : item("Sync now", () => act((answer) => `Feed ${name}: ${answer.outcome}` +
        `${answer.message ? ` (${answer.message})` : ""}`, () => post(`${path}/sync`), refresh)),
      item(enabled ? "Disable" : "Enable", () => act(`Feed ${name} ${enabled ? "disabled" : "enabled"}.`,
        () => post(`${path}/${enabled ? "disable" : "enable"}`), refresh)),
      item("Delete", async () => {
        if (!window.confirm(`Delete the feed ${name}? Its manifest is removed; agents stop matching it.`)) return;
        await act(`Feed ${name} deleted.`, () => remove(path), () => {
          location.hash = "#/feeds";
          refresh();
        });
      }, {class: "danger"})));
  return menu;
}

function feedList(main) {
  const tbody = h("tbody", {}, h("tr", {}, h("td", {colspan: 10, class: "muted"}, "Loading the feeds…")));
  const refused = h("div");
  async function refresh() {
    try {
      const answer = await get("/feeds");
      fill(tbody, answer.feeds.length ? answer.feeds.map((feed) => h("tr", {dataset: {feed: feed.name}},
        h("th", {scope: "row"}, h("a", {href: `#/feeds/${encodeURIComponent(feed.name)}`}, feed.name)),
        h("td", {}, feed.content), h("td", {}, feed.mode), h("td", {class: "number"}, feed.entries),
        h("td", {class: "number"}, feed.rejectedLines), h("td", {}, time(feed.lastSuccessfulSync)),
        h("td", {class: "number"}, feed.version), h("td", {}, feed.push ? "push" : feed.url),
        h("td", {}, conditions(feed)), h("td", {}, actionMenu(feed, refresh))))
        : h("tr", {}, h("td", {colspan: 10, class: "muted"}, "No feeds yet: add one.")));
      fill(refused, answer.refused.length ? [h("h2", {}, "Manifests refused"), h("ul", {},
        answer.refused.map((item) => h("li", {class: "error"}, JSON.stringify(item))))] : null);
    } catch (error) {
      fill(tbody, h("tr", {}, h("td", {colspan: 10, class: "error"}, error.message)));
    }
  }
  fill(main,
    h("div", {class: "heading"}, h("h1", {}, "Threat Feeds"),
      h("a", {href: "#/feeds/new", class: "button primary", id: "add-feed"}, "Add Feed")),
    h("div", {class: "table-box"}, h("table", {id: "feeds-table"},
      h("caption", {}, "Every GlobalThreatFeed the collector reads"),
      h("thead", {}, h("tr", {}, ["Name", "Content", "Mode", "Entries", "Rejected lines", "Last sync", "Version",
        "Source", "Error conditions", "Action"].map((title) => h("th", {scope: "col"}, title)))), tbody)),
    refused);
  refresh();
  // Pulls and their failures change the status: shown again every few seconds while the page is open.
  const timer = setInterval(() => {
    if (!document.querySelector(".menu[open]") && !tbody.contains(document.activeElement)) refresh();
  }, 5000);
  return () => clearInterval(timer);
}

async function feedDetail(main, name) {
  fill(main, h("p", {class: "muted"}, `Loading the feed ${name}…`));
  let feed;
  try {
    feed = await get(`/feeds/${encodeURIComponent(name)}`);
  } catch (error) {
    fill(main, h("h1", {}, name), h("p", {class: "error"}, error.message), h("a", {href: "#/feeds"}, "All feeds"));
    return;
  }
  const pairs = [["Content", feed.content], ["Mode", feed.mode], ["Description", feed.description],
    ["Source", feed.push ? "push feed" : feed.url], ["Format", feed.format], ["Pull period",
      feed.periodSeconds ? `${feed.periodSeconds / 3600} h` : "—"], ["Match subdomains", String(feed.matchSubdomains)],
    ["Entries", feed.entries], ["Rejected lines", feed.rejectedLines], ["Last sync", time(feed.lastSuccessfulSync)],
    ["Version", feed.version], ["SHA-256", h("code", {}, feed.sha256 || "—")], ["Read from", feed.source],
    ["Error conditions", conditions(feed)]];
  fill(main,
    h("div", {class: "heading"}, h("h1", {}, `Feed ${feed.name}`), actionMenu(feed, () => feedDetail(main, name))),
    h("p", {}, h("a", {href: "#/feeds"}, "All feeds"), " · ", h("a", {href: `#/events?feed=${encodeURIComponent(name)}`},
      "Its events")),
    h("dl", {class: "facts"}, pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "")])),
    h("h2", {}, "Rejected lines (samples)"),
    (feed.rejectedSamples || []).length ? h("table", {}, h("thead", {}, h("tr", {},
      ["Line", "Text", "Why"].map((title) => h("th", {scope: "col"}, title)))),
    h("tbody", {}, feed.rejectedSamples.map((sample) => h("tr", {}, h("td", {class: "number"}, sample.line),
      h("td", {}, h("code", {}, sample.text)), h("td", {}, sample.reason))))) : h("p", {class: "muted"}, "None."));
}

export function render(main, route) {
  const [name, action] = route.rest;
  if (name === "new") return feedForm(main, null);
  if (name && action === "edit") return feedForm(main, name);
  if (name) return void feedDetail(main, name);
  return feedList(main);
}
