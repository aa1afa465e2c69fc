// The Add Feed and Edit forms. An edit starts from the feed's manifest as it is (JSON from the manifest
// route) and changes only the fields the form shows, so a field it does not know (severity, feedType,
// globalNetworkSet, a TAXII pull) is kept. A 422 is shown at the control of the field it names.

import {ApiError, get, post, put} from "./api.js";
import {fill, field, h, notify, showFieldError} from "./dom.js";

const FORMATS = [["newlineDelimited", "one entry a line"], ["json", "JSON (a JSONPath)"],
  ["csv", "CSV (a column)"], ["jsonLines", "JSON Lines (a key)"], ["misp", "MISP export"], ["stix", "STIX 2.1 bundle"]];

function formatOf(http) {
  const format = (http && http.format) || {};
  const kind = Object.keys(format)[0] || "newlineDelimited";
  const options = format[kind] || {};
  const option = kind === "json" ? options.path : kind === "jsonLines" ? options.key
    : kind === "csv" ? (options.fieldName ?? options.fieldNum) : "";
  return [kind, option ?? ""];
}

function formatFrom(kind, option) {
  if (kind === "json") return {json: {path: option}};
  if (kind === "jsonLines") return {jsonLines: {key: option}};
  if (kind === "csv") {
    return /^\d+$/.test(option) ? {csv: {fieldNum: Number(option)}} : {csv: {fieldName: option, header: true}};
  }
  return {[kind]: {}};
}

function headerRow(header = {name: ""}) {
  const from = header.valueFrom || {};
  const source = from.secretKeyRef ? "secret" : from.configMapKeyRef ? "configmap" : "value";
  const ref = from.secretKeyRef || from.configMapKeyRef || {};
  const row = h("fieldset", {class: "header-row"}, h("legend", {}, "Header"));
  const nameInput = h("input", {name: "header-name", value: header.name || "", placeholder: "Authorization",
    "aria-label": "Header name"});
  const sourceSelect = h("select", {name: "header-source", "aria-label": "Where its value comes from"},
    [["value", "value"], ["secret", "Secret key"], ["configmap", "ConfigMap key"]].map(([value, label]) =>
      h("option", {value, selected: value === source}, label)));
  const value = h("input", {name: "header-value", value: header.value || "", "aria-label": "Header value"});
  const refName = h("input", {name: "header-ref-name", value: ref.name || "", placeholder: "feed-credentials",
    "aria-label": "Secret or ConfigMap name"});
  const refKey = h("input", {name: "header-ref-key", value: ref.key || "", placeholder: "authorization",
    "aria-label": "Key in it"});
  const shown = () => {
    value.hidden = sourceSelect.value !== "value";
    refName.hidden = refKey.hidden = sourceSelect.value === "value";
  };
  sourceSelect.addEventListener("change", shown);
  shown();
  fill(row, h("legend", {}, "Header"), nameInput, sourceSelect, value, refName, refKey,
    h("button", {type: "button", class: "link", onclick: () => row.remove(), "aria-label": "Remove this header"},
      "Remove"));
  return row;
}

function headersOf(form) {
  return [...form.querySelectorAll(".header-row")].map((row) => {
    const read = (name) => row.querySelector(`[name="${name}"]`).value.trim();
    const name = read("header-name");
    if (!name) return null;
    const source = read("header-source");
    if (source === "value") return {name, value: read("header-value")};
    const ref = {name: read("header-ref-name"), key: read("header-ref-key")};
    return {name, valueFrom: source === "secret" ? {secretKeyRef: ref} : {configMapKeyRef: ref}};
  }).filter(Boolean);
}

function labelsText(labels) {
  return Object.entries(labels || {}).map(([key, value]) => `${key}=${value}`).join("\n");
}

function labelsFrom(text) {
  const labels = {};
  for (const line of text.split(/[\n,]/).map((part) => part.trim()).filter(Boolean)) {
    const [key, ...value] = line.split("=");
    labels[key.trim()] = value.join("=").trim();
  }
  return labels;
}

/** The form, for a new feed (`name` null) or an existing one. */
export function feedForm(main, name) {
  fill(main, h("p", {class: "muted"}, "Loading…"));
  (async () => {
    let manifest = {apiVersion: "dnswatch.dev/v1", kind: "GlobalThreatFeed", metadata: {name: ""},
      spec: {content: "DomainNameSet", mode: "Enabled", pull: {period: "24h", http: {url: ""}}}};
    if (name) {
      try {
        manifest = await get(`/feeds/${encodeURIComponent(name)}/manifest`, "application/json");
      } catch (error) {
        fill(main, h("h1", {}, `Edit ${name}`), h("p", {class: "error"}, error.message));
        return;
      }
    }
    const spec = manifest.spec || {};
    const http = (spec.pull || {}).http || {};
    const [formatKind, formatOption] = formatOf(http);
    const select = (fieldName, options, chosen) => h("select", {name: fieldName},
      options.map(([value, label]) => h("option", {value, selected: value === chosen}, label)));
    const headers = h("div", {class: "headers"}, (http.headers || []).map((header) => headerRow(header)));
    const form = h("form", {class: "feed-form", "aria-label": name ? `Edit feed ${name}` : "Add a feed",
      novalidate: true},
    field("Name", h("input", {name: "metadata.name", value: manifest.metadata.name || "", required: true,
      readonly: Boolean(name), autocomplete: "off"}), name ? "A feed is renamed by adding the new one and " +
      "deleting the old." : "Lower-case letters, digits, '-' and '.'; events name it in record.feeds."),
    field("Description", h("input", {name: "spec.description", value: spec.description || "", maxlength: 256})),
    field("Content", select("spec.content", [["DomainNameSet", "DomainNameSet (names)"],
      ["IPSet", "IPSet (addresses and CIDRs)"]], spec.content || "IPSet")),
    field("Mode", select("spec.mode", [["Enabled", "Enabled"], ["Disabled", "Disabled"]], spec.mode || "Enabled")),
    field("URL", h("input", {name: "spec.pull.http.url", type: "url", value: http.url || "",
      placeholder: "https://feeds.example/c2.txt"})),
    field("Pull period", h("input", {name: "spec.pull.period", value: (spec.pull || {}).period || "24h"}),
      "A Go duration, at least 5m: 30m, 12h, 1h30m."),
    field("Format", select("spec.pull.http.format", FORMATS, formatKind)),
    field("Format option", h("input", {name: "format-option", value: formatOption}),
      "JSON: the JSONPath to the entries ($.data[*].domain); CSV: the column's number or header name; " +
      "JSON Lines: the key."),
    h("div", {class: "field check"}, h("input", {type: "checkbox", name: "spec.matchSubdomains", id: "match-sub",
      checked: Boolean(spec.matchSubdomains)}), h("label", {for: "match-sub"}, "Match subdomains of each entry")),
    field("Labels", h("textarea", {name: "metadata.labels", rows: 3}, labelsText(manifest.metadata.labels)),
      "key=value, one a line: they travel into every event of the feed (record.feed_labels)."),
    h("fieldset", {class: "header-list"}, h("legend", {}, "HTTP headers (spec.pull.http.headers)"),
      h("input", {type: "hidden", name: "spec.pull.http.headers"}), headers,
      h("button", {type: "button", id: "add-header", onclick: () => headers.append(headerRow())}, "Add a header")),
    h("p", {class: "form-error error", role: "alert"}),
    h("div", {class: "buttons"}, h("button", {type: "submit", class: "primary"}, name ? "Save" : "Add Feed"),
      h("a", {href: name ? `#/feeds/${encodeURIComponent(name)}` : "#/feeds", class: "button"}, "Cancel")));
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      const data = new FormData(form);
      const labels = labelsFrom(data.get("metadata.labels"));
      const metadata = {...manifest.metadata, name: data.get("metadata.name").trim()};
      if (Object.keys(labels).length) metadata.labels = labels;
      else delete metadata.labels;
      const newHttp = {...http, url: data.get("spec.pull.http.url").trim(),
        format: formatFrom(data.get("spec.pull.http.format"), data.get("format-option").trim())};
      const newHeaders = headersOf(form);
      if (newHeaders.length) newHttp.headers = newHeaders;
      else delete newHttp.headers;
      const newSpec = {...spec, content: data.get("spec.content"), mode: data.get("spec.mode"),
        description: data.get("spec.description"), matchSubdomains: data.get("spec.matchSubdomains") !== null,
        pull: {...(spec.pull || {}), period: data.get("spec.pull.period").trim(), http: newHttp}};
      if (!newSpec.description) delete newSpec.description;
      const body = {...manifest, metadata, spec: newSpec};
      try {
        const answer = name ? await put(`/feeds/${encodeURIComponent(name)}`, body) : await post("/feeds", body);
        notify(answer && answer.pending ? `Feed ${metadata.name} written; the collector reads it shortly.`
          : `Feed ${metadata.name} ${name ? "saved" : "added"}.`);
        location.hash = `#/feeds/${encodeURIComponent(metadata.name)}`;
      } catch (error) {
        if (error instanceof ApiError) showFieldError(form, error);
        else throw error;
      }
    });
    fill(main, h("h1", {}, name ? `Edit feed ${name}` : "Add Feed"), form);
    form.querySelector("input:not([readonly])").focus();
  })();
}
