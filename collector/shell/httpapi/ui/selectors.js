// Selectors (dnswatch/selector.py's language) and names written from an event, for "create an exception".

/** A value in double quotes: a backslash before `"` and `\`, and before `*` and `?`, which would be wildcards. */
export function quoted(value) {
  return `"${String(value).replace(/[\\"*?]/g, (char) => `\\${char}`)}"`;
}

/** The selector that matches this event's source and what it matched:
 * source_namespace = "shop" AND "record.suspicious_domains" IN {"evil.example"} */
export function selectorFor(event) {
  const record = event.record || {};
  const terms = [];
  if (event.source_namespace && event.source_namespace !== "-") {
    terms.push(`source_namespace = ${quoted(event.source_namespace)}`);
  } else if (event.source_ip && event.source_ip !== "-") {
    terms.push(`source_ip = ${quoted(event.source_ip)}`);
  }
  for (const [key, values] of [["record.suspicious_domains", record.suspicious_domains],
    ["record.suspicious_ips", record.suspicious_ips]]) {
    if (values && values.length) terms.push(`"${key}" IN {${values.map(quoted).join(", ")}}`);
  }
  return terms.join(" AND ");
}

/** A resource name (a DNS subdomain name) from the event's namespace and first match. */
export function exceptionNameFor(event) {
  const record = event.record || {};
  const what = (record.suspicious_domains || [])[0] || (record.suspicious_ips || [])[0] || record.qname || "event";
  const who = event.source_namespace && event.source_namespace !== "-" ? event.source_namespace : "client";
  const name = `${who}-${what}`.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+/, "")
    .slice(0, 200).replace(/[^a-z0-9]+$/, "");
  return name || "exception";
}
