// The Security Events page: filters (kept in the URL), a chart, the table a keyset page at a time, new events
// from the stream as they are stored, and the detail of one event with its actions.

import {ApiError, followEvents, get, post} from "./api.js";
import {eventChart} from "./chart.js";
import {fill, h, notify, showFieldError, time, field} from "./dom.js";
import {exceptionNameFor, selectorFor} from "./selectors.js";

const PAGE_SIZE = 100;
const TEXT_FILTERS = [["namespace", "Namespace", "shop"], ["pod", "Pod", "web-7d4b9c-* or a pod's name"],
  ["feed", "Feed", "c2"], ["domain", "Domain", "evil.example"], ["host", "Node", "node-1"],
  ["type", "Type", "gtf_suspicious_dns_query"]];
const FLAGS = ["include_excepted", "include_dismissed", "dismissed_only"];

let view = null;

/** The API's query for the page's filters: the URL's own parameters, which are the API's names. */
function apiQuery(params) {
  const query = new URLSearchParams();
  for (const [key] of TEXT_FILTERS) if (params.get(key)) query.set(key, params.get(key));
  for (const key of ["since", "until"]) if (params.get(key)) query.set(key, params.get(key));
  for (const key of FLAGS) if (params.get(key) === "true") query.set(key, "true");
  return query;
}

function localInput(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const shifted = new Date(moment.getTime() - moment.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}

function sourceOf(event) {
  if (!event.source_namespace || event.source_namespace === "-") return event.source_ip;
  return event.source_name && event.source_name !== "-" ? event.source_name : event.source_name_aggr;
}

function matchedOf(event) {
  const record = event.record || {};
  return [...(record.suspicious_domains || []), ...(record.suspicious_ips || [])];
}

function marks(stored) {
  return [stored.excepted_by ? h("span", {class: "badge"}, `excepted by ${stored.excepted_by}`) : null,
    stored.dismissed ? h("span", {class: "badge"}, "dismissed") : null];
}

function filterForm(params) {
  const text = TEXT_FILTERS.map(([name, label, placeholder]) => field(label,
    h("input", {name, value: params.get(name) || "", placeholder, autocomplete: "off"})));
  const since = h("input", {type: "datetime-local", name: "since", step: 1, value: localInput(params.get("since"))});
  const until = h("input", {type: "datetime-local", name: "until", step: 1, value: localInput(params.get("until"))});
  const shown = params.get("dismissed_only") === "true" ? "only" : params.get("include_dismissed") === "true"
    ? "include" : "hide";
  const dismissed = h("select", {name: "dismissed"},
    [["hide", "hidden"], ["include", "shown too"], ["only", "only dismissed"]].map(([value, label]) =>
      h("option", {value, selected: value === shown}, label)));
  const excepted = h("input", {type: "checkbox", name: "include_excepted", id: "filter-excepted",
    checked: params.get("include_excepted") === "true"});
  const form = h("form", {class: "filters", "aria-label": "Filter events"},
    field("From (your time)", since), field("Until", until), text, field("Dismissed events", dismissed),
    h("div", {class: "field check"}, excepted, h("label", {for: "filter-excepted"}, "Show excepted events")),
    h("div", {class: "buttons"}, h("button", {type: "submit", class: "primary"}, "Apply"),
      h("a", {href: "#/events", class: "button"}, "Clear")));
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams();
    for (const [key] of TEXT_FILTERS) if (data.get(key).trim()) query.set(key, data.get(key).trim());
    for (const key of ["since", "until"]) if (data.get(key)) query.set(key, new Date(data.get(key)).toISOString());
    if (data.get("include_excepted")) query.set("include_excepted", "true");
    if (data.get("dismissed") === "include") query.set("include_dismissed", "true");
    if (data.get("dismissed") === "only") query.set("dismissed_only", "true");
    location.hash = `#/events${query.size ? `?${query}` : ""}`;
  });
  return form;
}

class EventsView {
  constructor(main, route) {
    this.main = main;
    this.params = route.query;
    this.query = apiQuery(route.query);
    this.rows = [];
    this.next = null;
    this.groupBy = "feed";
    this.detailId = null;
    this.status = h("span", {class: "live", id: "live-state", role: "status"}, "connecting");
    this.chart = h("div", {class: "chart-box"});
    this.tbody = h("tbody");
    this.more = h("button", {type: "button", hidden: true, onclick: () => this.loadMore()}, "Load more");
    this.count = h("span", {class: "muted", id: "event-count"});
    this.detail = h("aside", {class: "detail", id: "event-detail", hidden: true, "aria-label": "Event detail"});
    const groupBy = h("select", {id: "chart-by", onchange: (changed) => {
      this.groupBy = changed.target.value;
      this.drawChart();
    }}, h("option", {value: "feed"}, "feed"), h("option", {value: "namespace"}, "namespace"));
    fill(main,
      h("div", {class: "heading"}, h("h1", {}, "Security Events"), this.status),
      filterForm(route.query),
      h("section", {"aria-label": "Events over time"},
        h("div", {class: "chart-head"}, h("h2", {}, "Events over time"),
          h("label", {for: "chart-by"}, "by "), groupBy), this.chart),
      h("div", {class: "split"},
        h("section", {class: "table-box", "aria-label": "Events"},
          h("table", {class: "events", id: "events-table"},
            h("caption", {}, "Events, newest first ", this.count),
            h("thead", {}, h("tr", {}, ["Time", "Pod or client", "Namespace", "Queried name", "What matched",
              "Feeds", "Count", "Node"].map((title) => h("th", {scope: "col"}, title)))),
            this.tbody),
          this.more),
        this.detail));
    // The stream first, then the list: an event stored in between arrives by the stream (kept once, by id).
    let listed = false;
    this.stop = followEvents(this.query.size ? `?${this.query}` : "", (stored) => this.arrived(stored),
      (state, error) => {
        this.status.textContent = state === "live" ? "live" : state;
        this.status.dataset.state = state;
        if (!listed && (state === "live" || state === "stopped" || state === "reconnecting")) {
          listed = true;
          this.loadFirst();
        }
        if (error && error.status === 403) notify(error.message, "error");
      });
    this.open(route.rest[0] || null);
  }

  async loadFirst() {
    await this.load(`/events?${new URLSearchParams([...this.query, ["limit", String(PAGE_SIZE)]])}`, true);
  }

  async loadMore() {
    if (this.next) await this.load(this.next.replace(/^.*?\/api\/v1/, ""), false);
  }

  async load(path, first) {
    try {
      const page = await get(path);
      const known = new Set(this.rows.map((stored) => stored.id));
      if (first) this.rows = this.rows.filter((stored) => !page.events.some((e) => e.id === stored.id));
      this.rows.push(...page.events.filter((stored) => first || !known.has(stored.id)));
      this.next = page.next;
      this.sortAndDraw();
    } catch (error) {
      fill(this.tbody, h("tr", {}, h("td", {colspan: 8, class: "error"}, error.message)));
    }
  }

  arrived(stored) {
    const index = this.rows.findIndex((row) => row.id === stored.id);
    if (index >= 0) this.rows[index] = stored;
    else this.rows.push(stored);
    this.fresh = stored.id;
    this.sortAndDraw();
    if (this.detailId === stored.id) this.open(stored.id, true);
  }

  sortAndDraw() {
    this.rows.sort((a, b) => (a.event.time < b.event.time ? 1 : a.event.time > b.event.time ? -1
      : a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const suffix = this.params.size ? `?${this.params}` : "";
    fill(this.tbody, this.rows.length ? this.rows.map((stored) => {
      const event = stored.event;
      const record = event.record || {};
      const matched = matchedOf(event).filter((name) => name !== record.qname);
      return h("tr", {dataset: {id: stored.id}, class: [stored.id === this.fresh ? "fresh" : "",
        stored.id === this.detailId ? "selected" : ""].join(" ").trim() || undefined},
      h("td", {}, time(event.time)), h("td", {}, sourceOf(event)), h("td", {}, event.source_namespace),
      h("td", {}, h("a", {href: `#/events/${encodeURIComponent(stored.id)}${suffix}`}, record.qname || "(none)"),
        marks(stored)),
      h("td", {}, matched.length ? matched.join(", ") : h("span", {class: "muted"}, "the question")),
      h("td", {}, (record.feeds || []).join(", ")), h("td", {class: "number"}, record.count),
      h("td", {}, event.host));
    }) : h("tr", {}, h("td", {colspan: 8, class: "muted"}, "No events match these filters.")));
    this.count.textContent = `(${this.rows.length}${this.next ? "+" : ""} shown)`;
    this.more.hidden = !this.next;
    this.drawChart();
  }

  drawChart() {
    fill(this.chart, eventChart(this.rows, this.groupBy));
  }

  /** Show event `id` in the detail panel (null: close it). */
  async open(id, quietly = false) {
    this.detailId = id;
    for (const row of this.tbody.querySelectorAll("tr[data-id]")) {
      row.classList.toggle("selected", row.dataset.id === id);
    }
    if (!id) {
      this.detail.hidden = true;
      return;
    }
    this.detail.hidden = false;
    if (!quietly) fill(this.detail, h("p", {class: "muted"}, "Loading the event…"));
    try {
      const stored = await get(`/events/${encodeURIComponent(id)}`);
      if (this.detailId !== id) return;
      fill(this.detail, ...this.describe(stored));
      if (!quietly) this.detail.querySelector("h2").focus();
    } catch (error) {
      fill(this.detail, h("h2", {tabindex: -1}, "Event"), h("p", {class: "error"}, error.message));
    }
  }

  describe(stored) {
    const event = stored.event;
    const record = event.record || {};
    const back = `#/events${this.params.size ? `?${this.params}` : ""}`;
    const labels = Object.entries(event.source_labels || {});
    const workload = event.source_workload;
    const dismiss = h("button", {type: "button", id: "dismiss", onclick: () => this.mark(stored, !stored.dismissed)},
      stored.dismissed ? "Undismiss" : "Dismiss");
    const except = h("button", {type: "button", id: "create-exception",
      onclick: () => except.replaceWith(this.exceptionForm(stored))}, "Create an exception from this event");
    const definition = (pairs) => h("dl", {}, pairs.filter(([, value]) => value !== undefined).map(
      ([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "")]));
    return [
      h("div", {class: "detail-head"}, h("h2", {tabindex: -1}, record.qname || event.id),
        h("a", {href: back, class: "button", "aria-label": "Close the detail"}, "Close")),
      h("p", {}, event.description), h("p", {}, marks(stored)),
      h("div", {class: "buttons"}, dismiss, except),
      stored.dismissed ? h("p", {class: "muted"}, "Dismissed by ", stored.dismissed_by || "?", " at ",
        time(stored.dismissed_at)) : null,
      h("h3", {}, "Source"),
      definition([["Pod", event.source_name], ["Aggregated", event.source_name_aggr],
        ["Namespace", event.source_namespace], ["Client address", event.source_ip],
        ["Workload", workload ? `${workload.kind} ${workload.name}` : "none (no pod)"], ["Node", event.host],
        ["Labels", labels.length ? h("ul", {class: "labels"}, labels.map(([key, value]) =>
          h("li", {}, h("code", {}, `${key}=${value}`)))) : "none"]]),
      h("h3", {}, "DNS"),
      definition([["Question", `${record.qname} ${record.qtype}`], ["Response", record.rcode ?? "none seen"],
        ["Server", record.server_ip], ["Answers", record.answers && record.answers.length
          ? h("ul", {class: "answers"}, record.answers.map((answer) => h("li", {}, h("code", {}, answer))))
          : "none"]]),
      h("h3", {}, "Matches"),
      h("table", {class: "matches"}, h("thead", {}, h("tr", {}, ["Name", "Feed", "Entry", "Section", "Version",
        "Line"].map((title) => h("th", {scope: "col"}, title)))),
      h("tbody", {}, (record.matches || []).map((match) => h("tr", {},
        h("td", {}, match.name), h("td", {}, h("a", {href: `#/feeds/${encodeURIComponent(match.feed)}`},
          match.feed)), h("td", {}, h("code", {}, match.entry)), h("td", {}, match.section),
        h("td", {}, match.feed_version), h("td", {}, match.line === null || match.line === undefined ? "—"
          : `${match.line}${match.line_text ? `: ${match.line_text}` : ""}`))))),
      h("h3", {}, "Seen"),
      definition([["First seen", time(record.first_seen)], ["Last seen", time(record.last_seen)],
        ["Count", record.count], ["Severity", event.severity], ["Excepted by", stored.excepted_by
          ? h("a", {href: `#/exceptions/${encodeURIComponent(stored.excepted_by)}`}, stored.excepted_by) : "—"],
        ["Id", h("code", {}, event.id)]]),
      h("details", {}, h("summary", {}, "The whole record (JSON)"),
        h("pre", {}, JSON.stringify(event, null, 2))),
    ];
  }

  async mark(stored, dismiss) {
    try {
      await post(dismiss ? "/events/dismiss" : "/events/undismiss", {ids: [stored.id]});
      notify(dismiss ? `Event ${stored.id} dismissed.` : `Event ${stored.id} shown again.`);
      const marked = await get(`/events/${encodeURIComponent(stored.id)}`);
      this.rows = this.rows.filter((row) => row.id !== stored.id);
      if (this.shows(marked)) this.rows.push(marked);
      this.sortAndDraw();
      await this.open(stored.id, true);
    } catch (error) {
      notify(error.message, "error");
    }
  }

  /** Whether the filters' marks show an event (the rest of the filter matched it already). */
  shows(stored) {
    const flag = (key) => this.query.get(key) === "true";
    if (flag("dismissed_only")) return stored.dismissed && (!stored.excepted_by || flag("include_excepted"));
    return (!stored.dismissed || flag("include_dismissed")) && (!stored.excepted_by || flag("include_excepted"));
  }

  exceptionForm(stored) {
    const event = stored.event;
    const form = h("form", {class: "exception-form", "aria-label": "New alert exception"},
      h("h3", {}, "New alert exception"),
      field("Name", h("input", {name: "metadata.name", value: exceptionNameFor(event), required: true})),
      field("Description", h("input", {name: "spec.description", maxlength: 256,
        value: `${event.source_namespace}: ${event.record.qname} is expected`})),
      field("Selector", h("textarea", {name: "spec.selector", rows: 3, required: true}, selectorFor(event)),
        "Which events it hides (docs/alert-operations.md): edit it to widen or narrow it."),
      field("Period (optional)", h("input", {name: "spec.period", placeholder: "168h"}),
        "How long it applies from now; empty: until it is deleted."),
      h("p", {class: "form-error error", role: "alert"}),
      h("div", {class: "buttons"}, h("button", {type: "submit", class: "primary"}, "Create exception")));
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      const data = new FormData(form);
      const spec = {description: data.get("spec.description"), selector: data.get("spec.selector")};
      if (data.get("spec.period").trim()) {
        spec.period = data.get("spec.period").trim();
        spec.startTime = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      }
      const name = data.get("metadata.name").trim();
      try {
        await post("/exceptions", {apiVersion: "dnswatch.dev/v1", kind: "AlertException",
          metadata: {name}, spec});
      } catch (error) {
        if (error instanceof ApiError) showFieldError(form, error);
        return;
      }
      notify(`Exception ${name} created; marking the events it matches…`);
      await this.untilExcepted(stored.id);
      notify(`Exception ${name} created: the events it matches are hidden from the default view.`);
      location.hash = `#/events${this.params.size ? `?${this.params}` : ""}`;
      this.rows = [];
      await this.loadFirst();
    });
    return form;
  }

  /** Until the collector has marked the event (it re-marks stored events in pages, after the write). */
  async untilExcepted(id) {
    for (let tries = 0; tries < 60; tries++) {
      const stored = await get(`/events/${encodeURIComponent(id)}`).catch(() => null);
      if (!stored || stored.excepted_by) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  update(route) {
    if (`${route.query}` !== `${this.params}`) return false;
    this.open(route.rest[0] || null);
    return true;
  }
}

export function render(main, route) {
  view = new EventsView(main, route);
  const current = view;
  const onKey = (key) => {
    if (key.key === "Escape" && current.detailId) location.hash = `#/events${current.params.size
      ? `?${current.params}` : ""}`;
  };
  document.addEventListener("keydown", onKey);
  return () => {
    current.stop();
    document.removeEventListener("keydown", onKey);
  };
}

export function update(route) {
  return view ? view.update(route) : false;
}
