// Building the page's elements. Every value from the API (domain names, labels, messages) is set as text,
// never parsed as markup: the names a page shows are chosen by whoever queries DNS, attackers included.

/** An element: h("a", {href: "#/feeds", class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attributes = {}, ...children) {
  const element = tag === "svg" || SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

const SVG_TAGS = new Set(["g", "rect", "line", "text", "title", "path", "polyline"]);

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** A <time> in the browser's zone, the UTC instant on hover. */
export function time(iso) {
  if (!iso) return h("span", {class: "muted"}, "never");
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return h("span", {}, iso);
  return h("time", {datetime: iso, title: `${moment.toISOString().replace(".000Z", "Z")} (UTC)`},
    LOCAL.format(moment));
}

/** A labelled form control: label text, then the control (its id ties the two). */
let counter = 0;
export function field(text, control, hint) {
  const id = control.id || `f${++counter}`;
  control.id = id;
  const help = hint ? h("small", {class: "hint", id: `${id}-hint`}, hint) : null;
  if (help) control.setAttribute("aria-describedby", help.id);
  return h("div", {class: "field", dataset: {field: control.name || ""}}, h("label", {for: id}, text), control,
    help, h("small", {class: "field-error", id: `${id}-error`, role: "alert"}));
}

/** Show a 422's message at the control its `field` names (body.spec.pull.period → name "spec.pull.period"),
 * or in the form's own error line when no control has that name. */
export function showFieldError(form, error) {
  for (const old of form.querySelectorAll(".field-error")) old.textContent = "";
  for (const old of form.querySelectorAll("[aria-invalid]")) old.removeAttribute("aria-invalid");
  const name = (error.field || "").replace(/^body\./, "");
  const control = name && [...form.elements].find(
    (candidate) => candidate.name && (name === candidate.name || name.startsWith(`${candidate.name}.`)
      || name.startsWith(`${candidate.name}[`)));
  const summary = form.querySelector(".form-error");
  if (control) {
    control.setAttribute("aria-invalid", "true");
    const line = form.querySelector(`#${CSS.escape(control.id)}-error`);
    if (line) line.textContent = error.message;
    control.focus();
  }
  if (summary) summary.textContent = control ? `${error.message}` : error.message;
}

/** A short notice at the top of the page, read out by screen readers. */
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  fill(notice, h("p", {class: `notice ${kind}`}, message,
    h("button", {type: "button", class: "link", "aria-label": "Close the notice",
      onclick: () => notice.replaceChildren()}, "×")));
}
