// The Webhooks page: every SecurityEventWebhook with its delivery status, one in detail, and a test delivery.
// They are written as manifests (docs/webhooks.md): a spec may name secrets, which the API shows redacted.

import {get, post} from "./api.js";
import {fill, h, notify, time} from "./dom.js";

async function test(name) {
  try {
    const result = await post(`/webhooks/${encodeURIComponent(name)}/test`);
    notify(result.delivered ? `Webhook ${name}: the sample event was delivered (HTTP ${result.http_status}).`
      : `Webhook ${name}: not delivered: ${result.error}`, result.delivered ? "info" : "error");
  } catch (error) {
    notify(error.message, "error");
  }
}

function conditions(status) {
  const list = status.conditions || status.errorConditions || [];
  return list.length ? h("ul", {class: "conditions"}, list.map((condition) =>
    h("li", {}, h("strong", {}, condition.type), `: ${condition.message || condition.status || ""}`))) : "none";
}

async function list(main) {
  const tbody = h("tbody", {}, h("tr", {}, h("td", {colspan: 8, class: "muted"}, "Loading…")));
  fill(main, h("h1", {}, "Webhooks"), h("div", {class: "table-box"}, h("table", {id: "webhooks-table"},
    h("caption", {}, "SecurityEventWebhooks: where the collector sends events"),
    h("thead", {}, h("tr", {}, ["Name", "Consumer", "State", "Last delivery", "Pending", "Dead letters", "Last error", "Test"].map(
      (title) => h("th", {scope: "col"}, title)))), tbody)));
  try {
    const answer = await get("/webhooks");
    fill(tbody, answer.webhooks.length ? answer.webhooks.map((webhook) => {
      const status = webhook.status || {};
      return h("tr", {}, h("th", {scope: "row"}, h("a", {href: `#/webhooks/${encodeURIComponent(webhook.name)}`},
        webhook.name)), h("td", {}, webhook.spec.consumer), h("td", {}, status.state || webhook.spec.state),
      h("td", {}, time(status.lastDelivery)), h("td", {class: "number"}, status.pending ?? ""),
      h("td", {class: "number"}, status.deadLetters ?? ""),
      h("td", {}, status.lastError || ""), h("td", {}, h("button", {type: "button", onclick: () => test(webhook.name),
        "aria-label": `Send a test event to ${webhook.name}`}, "Test")));
    }) : h("tr", {}, h("td", {colspan: 8, class: "muted"}, "No webhooks.")));
  } catch (error) {
    fill(tbody, h("tr", {}, h("td", {colspan: 8, class: "error"}, error.message)));
  }
}

async function detail(main, name) {
  let webhook;
  try {
    webhook = await get(`/webhooks/${encodeURIComponent(name)}`);
  } catch (error) {
    fill(main, h("h1", {}, name), h("p", {class: "error"}, error.message));
    return;
  }
  fill(main, h("div", {class: "heading"}, h("h1", {}, `Webhook ${name}`),
    h("button", {type: "button", onclick: () => test(name)}, "Send a test event")),
  h("p", {}, h("a", {href: "#/webhooks"}, "All webhooks")),
  h("h2", {}, "Conditions"), h("div", {}, conditions(webhook.status || {})),
  h("h2", {}, "Spec (secrets redacted)"), h("pre", {}, JSON.stringify(webhook.spec, null, 2)),
  h("h2", {}, "Status"), h("pre", {}, JSON.stringify(webhook.status, null, 2)));
}

export function render(main, route) {
  if (route.rest[0]) detail(main, route.rest[0]);
  else list(main);
}
