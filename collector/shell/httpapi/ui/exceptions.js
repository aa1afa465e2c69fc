// The Exceptions page: every AlertException with its status, one in detail, and the create, edit and delete
// forms (spec fields: description, selector, startTime, endTime or period).

import {ApiError, get, post, put, remove} from "./api.js";
import {field, fill, h, notify, showFieldError, time} from "./dom.js";

function state(exception) {
  const status = exception.status || {};
  const problems = status.errorConditions || [];
  if (problems.length) return h("span", {class: "error"}, problems[0].message);
  return status.active ? h("span", {class: "ok"}, "active") : h("span", {class: "muted"}, "inactive");
}

async function removeException(name) {
  if (!window.confirm(`Delete the exception ${name}? The events it hides are shown again.`)) return;
  try {
    await remove(`/exceptions/${encodeURIComponent(name)}`);
    notify(`Exception ${name} deleted.`);
    location.hash = "#/exceptions";
  } catch (error) {
    notify(error.message, "error");
  }
}

async function list(main) {
  const tbody = h("tbody", {}, h("tr", {}, h("td", {colspan: 6, class: "muted"}, "Loading…")));
  fill(main, h("div", {class: "heading"}, h("h1", {}, "Exceptions"),
    h("a", {href: "#/exceptions/new", class: "button primary"}, "Add exception")),
  h("div", {class: "table-box"}, h("table", {id: "exceptions-table"},
    h("caption", {}, "Alert exceptions: the events each selector matches are hidden while it is active"),
    h("thead", {}, h("tr", {}, ["Name", "State", "Events hidden", "Ends", "Selector", "Description"].map(
      (title) => h("th", {scope: "col"}, title)))), tbody)));
  try {
    const answer = await get("/exceptions");
    fill(tbody, answer.exceptions.length ? answer.exceptions.map((exception) => h("tr", {},
      h("th", {scope: "row"}, h("a", {href: `#/exceptions/${encodeURIComponent(exception.name)}`}, exception.name)),
      h("td", {}, state(exception)), h("td", {class: "number"}, exception.exceptedEvents),
      h("td", {}, time((exception.status || {}).endsAt)), h("td", {}, h("code", {}, exception.spec.selector)),
      h("td", {}, exception.spec.description || ""))) : h("tr", {}, h("td", {colspan: 6, class: "muted"},
      "No exceptions. Create one from an event's detail, or here.")));
  } catch (error) {
    fill(tbody, h("tr", {}, h("td", {colspan: 6, class: "error"}, error.message)));
  }
}

async function detail(main, name) {
  let exception;
  try {
    exception = await get(`/exceptions/${encodeURIComponent(name)}`);
  } catch (error) {
    fill(main, h("h1", {}, name), h("p", {class: "error"}, error.message));
    return;
  }
  const spec = exception.spec;
  fill(main, h("div", {class: "heading"}, h("h1", {}, `Exception ${name}`),
    h("div", {class: "buttons"}, h("a", {href: `#/exceptions/${encodeURIComponent(name)}/edit`, class: "button"},
      "Edit"), h("button", {type: "button", class: "danger", onclick: () => removeException(name)}, "Delete"))),
  h("p", {}, h("a", {href: "#/exceptions"}, "All exceptions"), " · ",
    h("a", {href: "#/events?include_excepted=true"}, "Events with excepted ones")),
  h("dl", {class: "facts"}, [["State", state(exception)], ["Events hidden", exception.exceptedEvents],
    ["Selector", h("code", {}, spec.selector)], ["Description", spec.description || ""],
    ["Starts", spec.startTime ? time(spec.startTime) : "since ever"], ["Ends", time((exception.status || {}).endsAt)],
    ["Period", spec.period || "—"]].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])));
}

async function form(main, name) {
  let manifest = {apiVersion: "dnswatch.dev/v1", kind: "AlertException", metadata: {name: ""}, spec: {selector: ""}};
  if (name) {
    try {
      const shown = await get(`/exceptions/${encodeURIComponent(name)}`);
      manifest = {...manifest, metadata: {name}, spec: shown.spec};
    } catch (error) {
      fill(main, h("p", {class: "error"}, error.message));
      return;
    }
  }
  const spec = manifest.spec;
  const edit = h("form", {class: "exception-form", "aria-label": name ? `Edit exception ${name}` : "Add an exception"},
    field("Name", h("input", {name: "metadata.name", value: name || "", required: true, readonly: Boolean(name)})),
    field("Description", h("input", {name: "spec.description", value: spec.description || "", maxlength: 256})),
    field("Selector", h("textarea", {name: "spec.selector", rows: 3, required: true}, spec.selector || ""),
      'e.g. source_namespace = "ci" AND "record.suspicious_domains" IN {"*.test.example"}'),
    field("Start time (optional)", h("input", {name: "spec.startTime", value: spec.startTime || "",
      placeholder: "2026-12-01T00:00:00Z"})),
    field("End time (optional)", h("input", {name: "spec.endTime", value: spec.endTime || ""})),
    field("Period (optional)", h("input", {name: "spec.period", value: spec.period || "", placeholder: "168h"}),
      "Counted from the start time; give a start time with it."),
    h("p", {class: "form-error error", role: "alert"}),
    h("div", {class: "buttons"}, h("button", {type: "submit", class: "primary"}, name ? "Save" : "Add exception"),
      h("a", {class: "button", href: name ? `#/exceptions/${encodeURIComponent(name)}` : "#/exceptions"}, "Cancel")));
  edit.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const data = new FormData(edit);
    const newSpec = {};
    for (const key of ["description", "selector", "startTime", "endTime", "period"]) {
      const value = data.get(`spec.${key}`).trim();
      if (value) newSpec[key] = value;
    }
    const chosen = data.get("metadata.name").trim();
    const body = {...manifest, metadata: {name: chosen}, spec: newSpec};
    try {
      if (name) await put(`/exceptions/${encodeURIComponent(name)}`, body);
      else await post("/exceptions", body);
      notify(`Exception ${chosen} ${name ? "saved" : "created"}.`);
      location.hash = `#/exceptions/${encodeURIComponent(chosen)}`;
    } catch (error) {
      if (error instanceof ApiError) showFieldError(edit, error);
    }
  });
  fill(main, h("h1", {}, name ? `Edit exception ${name}` : "Add exception"), edit);
}

export function render(main, route) {
  const [name, action] = route.rest;
  if (name === "new") form(main, null);
  else if (name && action === "edit") form(main, name);
  else if (name) detail(main, name);
  else list(main);
}
