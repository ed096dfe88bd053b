// The analysts' search page: a thin client of GET /search and GET /documents/{id}.
//
// Two rules keep it small and safe:
// - The page's query string *is* the API's query string (q, entity, source, lang, since, until,
//   sort, from), so a URL is a shareable search and back/forward simply re-run it.
// - Nothing from the index is ever parsed as HTML: every text goes in as a text node (see h()),
//   and highlights are rebuilt from their <em> tags (see highlighted()). No innerHTML anywhere.
"use strict";

const PAGE_SIZE = 10;
// Facet name (the API's) -> heading. Each entity facet is followed by its original-language twin
// ("original PERSON": names a model of the article's own language found in the original text), so
// a name the translation lost ("Poutine") shows up. Empty facets are not shown (renderFacets).
const ORIGINAL = "original ";
const FACETS = [
  ...[["PERSON", "People"], ["ORG", "Organisations"], ["GPE", "Places"]].flatMap(
    ([label, heading]) => [[label, heading], [ORIGINAL + label, `${heading} · original language`]]),
  ["source", "Sources"],
  ["language", "Languages"],
];
const ENTITY_NAMES = { PERSON: "Person", ORG: "Organisation", GPE: "Place" };
const TRANSLATION = {
  translated: "translated",
  not_needed: "original in English",
  unsupported: "no translation (language pair unsupported)",
  failed: "translation failed",
};
const $ = (id) => document.getElementById(id);

// -- DOM helpers ---------------------------------------------------------------------------------

// createElement + text nodes: strings passed as children are never interpreted as markup.
// Handlers ("onclick") come from this file only; attribute values are set, not parsed.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return fill(el, children);
}

// replaceChildren() would turn a skipped (null) child into the text "null"; drop those first.
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

const ENTITIES = new Map([["amp", "&"], ["lt", "<"], ["gt", ">"], ["quot", '"'], ["apos", "'"]]);

// Elasticsearch (encoder "html") escapes the text and wraps matches in <em>. Instead of trusting
// that with innerHTML, split on the two tags, decode the entities in one pass and make text nodes:
// whatever a document contains, the only elements that can come out of it are <em>s.
function highlighted(fragment) {
  const nodes = [];
  let inEm = false;
  for (const part of String(fragment).split(/(<\/?em>)/)) {
    if (part === "<em>") inEm = true;
    else if (part === "</em>") inEm = false;
    else if (part) {
      const text = part.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (match, name) => {
        if (name[0] !== "#") return ENTITIES.get(name.toLowerCase()) ?? match;
        const code = name[1] === "x" || name[1] === "X"
          ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code <= 0x10ffff ? String.fromCodePoint(code) : match;
      });
      nodes.push(inEm ? h("em", null, text) : text);
    }
  }
  return nodes;
}

// Only http(s) links: a stored "javascript:" URL must not become a clickable script.
function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

let languageNames = null;
try {
  languageNames = new Intl.DisplayNames(["en"], { type: "language" });
} catch {
  /* old browser: show the codes */
}
function languageName(code) {
  if (!code) return "unknown language";
  if (code === "und") return "undetermined";
  try {
    const name = languageNames && languageNames.of(code);
    return name && name !== code ? name : code;
  } catch {
    return code;
  }
}

// -- state <-> URL -------------------------------------------------------------------------------

function readState(search) {
  const p = new URLSearchParams(search);
  return {
    q: p.get("q") || "",
    entity: p.getAll("entity"),
    source: p.getAll("source"),
    lang: p.getAll("lang"),
    since: p.get("since") || "",
    until: p.get("until") || "",
    sort: p.get("sort") === "date" ? "date" : "relevance",
    cluster: p.get("cluster") || "",
    collapse: p.get("collapse") === "true",
    from: Math.max(0, parseInt(p.get("from"), 10) || 0),
  };
}

function toQuery(state) {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  for (const key of ["entity", "source", "lang"]) for (const v of state[key]) p.append(key, v);
  if (state.since) p.set("since", state.since);
  if (state.until) p.set("until", state.until);
  if (state.sort !== "relevance") p.set("sort", state.sort);
  if (state.cluster) p.set("cluster", state.cluster);
  if (state.collapse) p.set("collapse", "true");
  if (state.from) p.set("from", state.from);
  return p.toString();
}

let state = readState(location.search);

// Every change goes through here: new history entry (unless nothing changed), then search.
// Any change but paging starts again at the first page.
function go(changes) {
  const next = { ...state, from: 0, ...changes };
  const query = toQuery(next);
  if (query !== toQuery(state)) history.pushState(null, "", query ? `?${query}` : location.pathname);
  state = next;
  run();
}

function toggle(key, value) {
  const values = state[key].includes(value)
    ? state[key].filter((v) => v !== value) : [...state[key], value];
  go({ [key]: values });
}

window.addEventListener("popstate", () => {
  state = readState(location.search);
  run();
});

// -- the form ------------------------------------------------------------------------------------

function fillForm() {
  $("q").value = state.q;
  $("since").value = state.since; // an invalid date in the URL shows empty; its chip remains
  $("until").value = state.until;
  $("sort").value = state.sort;
  $("collapse").checked = state.collapse;
}

// Reads the form; language and source are "add a filter" fields, emptied once added.
function applyForm() {
  const changes = {
    q: $("q").value.trim(),
    since: $("since").value,
    until: $("until").value,
    sort: $("sort").value,
    collapse: $("collapse").checked,
  };
  for (const key of ["lang", "source"]) {
    const value = $(key).value.trim();
    $(key).value = "";
    changes[key] = value && !state[key].includes(value) ? [...state[key], value] : state[key];
  }
  go(changes);
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  applyForm();
});
// Filters apply as soon as they change; the text box waits for Enter.
for (const id of ["lang", "source", "since", "until", "sort", "collapse"]) {
  $(id).addEventListener("change", applyForm);
}

// -- fetching ------------------------------------------------------------------------------------

async function getJson(url, signal) {
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Error("The search service cannot be reached. Is `newsflow serve` running?");
  }
  const body = await response.json().catch(() => null);
  if (response.ok) return body;
  // FastAPI says why: a string (our 422/503/404) or a list of validation errors.
  const detail = body && body.detail;
  if (typeof detail === "string") throw new Error(detail);
  if (Array.isArray(detail)) {
    throw new Error(detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; "));
  }
  throw new Error(`The search service answered ${response.status} ${response.statusText}.`);
}

let inFlight = null;

// Searches for the current state; a newer search cancels an older one, so a slow answer can
// never overwrite a newer one (fast typing, back/forward).
async function run() {
  if (inFlight) inFlight.abort();
  const controller = (inFlight = new AbortController());
  fillForm();
  renderChips();
  document.title = state.q ? `${state.q} · newsflow search` : "newsflow search";
  $("results").setAttribute("aria-busy", "true");
  const query = toQuery(state);
  let result;
  try {
    const url = `search?${query}${query ? "&" : ""}size=${PAGE_SIZE}`;
    result = await getJson(url, controller.signal);
  } catch (error) {
    if (error.name === "AbortError") return;
    setStatus(error.message, "error");
    fill($("results"));
    fill($("pager"));
    fill($("facets"));
    $("results").setAttribute("aria-busy", "false");
    return;
  }
  renderResults(result);
  renderFacets(result.facets);
  $("results").setAttribute("aria-busy", "false");
}

function setStatus(text, kind) {
  $("status").className = `message ${kind || ""}`;
  $("status").textContent = text;
}

// -- rendering -----------------------------------------------------------------------------------

function renderChips() {
  const chips = [
    ...state.entity.map((v) => {
      const [label, ...name] = v.split(":");
      return [`${ENTITY_NAMES[label] || label}: ${name.join(":")}`, () => toggle("entity", v)];
    }),
    ...state.source.map((v) => [`Source: ${v}`, () => toggle("source", v)]),
    ...state.lang.map((v) => [`Language: ${languageName(v)}`, () => toggle("lang", v)]),
    ...(state.since ? [[`From: ${state.since}`, () => go({ since: "" })]] : []),
    ...(state.until ? [[`To: ${state.until}`, () => go({ until: "" })]] : []),
    ...(state.cluster ? [["One story", () => go({ cluster: "" })]] : []),
  ];
  const clear = () => go({ entity: [], source: [], lang: [], since: "", until: "", cluster: "" });
  fill($("chips"),
    chips.map(([text, remove]) => h("li", { class: "chip" }, h("span", null, text),
      h("button", { type: "button", "aria-label": `Remove ${text}`, title: "Remove", onclick: remove },
        "×"))),
    chips.length > 1
      ? h("li", null, h("button", { type: "button", class: "link", onclick: clear }, "Clear filters"))
      : null);
}

function renderFacets(facets) {
  const groups = FACETS.map(([name, heading]) => {
    const buckets = facets[name] || [];
    if (!buckets.length) return null;
    // A facet value toggles the matching filter: entity "LABEL:NAME", or a source, or a language.
    // An original-language facet toggles its label's filter too (it matches either field).
    const original = name.startsWith(ORIGINAL);
    const label = original ? name.slice(ORIGINAL.length) : name;
    const [key, valueOf] = name === "source" ? ["source", (v) => v]
      : name === "language" ? ["lang", (v) => v] : ["entity", (v) => `${label}:${v}`];
    return h("section", { class: "facet" },
      h("h2", {
        title: original ? "Found in the original text by a model of the article's language" : null,
      }, heading),
      h("ul", null, buckets.map(([value, count]) => {
        const active = state[key].includes(valueOf(value));
        return h("li", null, h("button", {
          type: "button", class: "facet-value", "aria-pressed": String(active),
          "data-facet": name, "data-value": value, title: value, // long names are cut short
          onclick: () => toggle(key, valueOf(value)),
        }, h("span", { class: "name" }, name === "language" ? languageName(value) : value),
        h("span", { class: "count" }, count)));
      })));
  });
  fill($("facets"), ...groups.filter(Boolean));
  // Suggestions for the "add" fields: whatever the current results contain.
  for (const [name, list] of [["language", "lang-options"], ["source", "source-options"]]) {
    fill($(list), ...(facets[name] || []).map(([value]) =>
      h("option", { value }, name === "language" ? languageName(value) : null)));
  }
}

function renderResults({ total, hits }) {
  const first = state.from + 1;
  const last = state.from + hits.length;
  if (!total) {
    const filtered = toQuery({ ...state, q: "", sort: "relevance", from: 0 }) !== "";
    setStatus(`No articles match${state.q ? ` “${state.q}”` : ""}.` +
      (filtered ? " Try removing a filter." : ""), "empty");
  } else if (!hits.length) {
    setStatus(`No more results: ${total} article${total === 1 ? "" : "s"} in all.`, "empty");
  } else {
    setStatus(total === hits.length && !state.from
      ? `${total} article${total === 1 ? "" : "s"}` : `${first}–${last} of ${total} articles`);
  }
  fill($("results"), ...hits.map(renderHit));
  const page = (from, text) => h("button", { type: "button", onclick: () => go({ from }) }, text);
  fill($("pager"),
    state.from > 0 ? page(Math.max(0, state.from - PAGE_SIZE), "← Previous") : null,
    last < total ? page(state.from + PAGE_SIZE, "Next →") : null);
}

// Original and English side by side, as [language, content] columns. Callers pass the English
// only when it differs; an empty column is dropped, and a lone column in the article's own
// language needs no language tag.
function sides(tag, language, ...columns) {
  const shown = columns.filter(([, content]) => content != null && content.length !== 0);
  const tagged = shown.length > 1 || (shown[0] && shown[0][0] !== language);
  return h("div", { class: shown.length > 1 ? "pair" : "pair single" },
    shown.map(([lang, content]) => h(tag, { class: "side", lang: lang || null },
      tagged ? h("span", { class: "tag" }, (lang || "?").toUpperCase()) : null, content)));
}

// One story's view: why each version is in it, so a surprising "+N similar" can be judged.
function describeLink(link) {
  if (link.first) return "First article of this story";
  const joined = link.similarity
    ? `Joined at ${Math.round(link.similarity * 100)}% shared words with a version of it`
    : "Joined this story";
  const shared = Object.entries(link.shared_entities || {}).flatMap(([, names]) => names);
  return shared.length
    ? `${joined}; shares ${shared.join(", ")} with the first article`
    : `${joined}; no person, organisation or place in common with the first article`;
}

function renderHit(hit) {
  const marks = hit.highlights || {};
  const show = (field, text) => (marks[field] ? highlighted(marks[field][0]) : text || "");
  const title = show("title", hit.title || "(untitled)");
  const titleEn = hit.title_en && hit.title_en !== hit.title ? show("title_en", hit.title_en) : null;
  // Body fragments: the original's and the English's (the same text for English articles).
  const snippet = (field) => (marks[field] || []).map((f, i) => [i ? " … " : "", highlighted(f)]);
  const original = snippet("body");
  const english = hit.language === "en" ? [] : snippet("body_en");

  const entities = ["PERSON", "ORG", "GPE"].flatMap((label) =>
    (hit.entities[label] || []).map((name) => h("button", {
      type: "button", class: "entity", title: `Filter by ${ENTITY_NAMES[label].toLowerCase()}`,
      "aria-pressed": String(state.entity.includes(`${label}:${name}`)),
      onclick: () => toggle("entity", `${label}:${name}`),
    }, name)));

  const detail = h("div", { class: "document", hidden: true });
  const link = h("a", {
    class: "more", href: `documents/${encodeURIComponent(hit.id)}`, "aria-expanded": "false",
    onclick: (event) => {
      // A plain click expands inline; ctrl/middle-click still opens the JSON in a new tab.
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      expand(hit.id, link, detail);
    },
  }, "Full article");

  const status = TRANSLATION[hit.translation] || hit.translation || "translation unknown";
  return h("article", { class: "hit", "data-id": hit.id },
    h("h2", null, sides("span", hit.language, [hit.language, title], ["en", titleEn])),
    h("p", { class: "meta" },
      h("span", { class: "source" }, hit.source || "unknown source"), " · ",
      hit.date ? h("time", { datetime: hit.date }, hit.date.slice(0, 10)) : "undated", " · ",
      h("span", { class: "language" }, languageName(hit.language)), " · ",
      h("span", { class: `translation ${hit.translation || ""}` }, status),
      // Collapsed searches: the story's other versions (copies, other outlets and languages).
      hit.similar ? [" · ", h("button", {
        type: "button", class: "link similar",
        onclick: () => go({ cluster: hit.cluster_id, collapse: false }),
      }, `+${hit.similar} similar`)] : null),
    hit.story ? h("p", { class: "story-link" }, describeLink(hit.story)) : null,
    original.length || english.length
      ? h("div", { class: "snippets" },
        sides("p", hit.language, [hit.language, original], ["en", english]))
      : null,
    entities.length ? h("p", { class: "entities" }, entities) : null,
    link, detail);
}

async function expand(id, link, detail) {
  const open = link.getAttribute("aria-expanded") !== "true";
  link.setAttribute("aria-expanded", String(open));
  link.textContent = open ? "Hide article" : "Full article";
  detail.hidden = !open;
  if (!open || detail.dataset.loaded) return;
  fill(detail, h("p", { class: "message" }, "Loading…"));
  try {
    const doc = await getJson(`documents/${encodeURIComponent(id)}`);
    detail.dataset.loaded = "1";
    fill(detail, renderDocument(doc));
  } catch (error) {
    fill(detail, h("p", { class: "message error" }, error.message));
  }
}

function paragraphs(text) {
  return String(text || "").split(/\n+/).filter((p) => p.trim()).map((p) => h("p", null, p));
}

function renderDocument(doc) {
  const translation = doc.translation || {};
  const column = (heading, language, title, body) =>
    h("section", { class: "side", lang: language || null },
      h("h3", null, heading), h("h4", null, title || "(untitled)"), paragraphs(body));
  const hasEnglish = doc.language !== "en" && (doc.title_en || doc.body_en);
  const url = safeUrl(doc.url);
  // How the English came to be: engine and language path (pt → es → en), or why there is none.
  const how = translation.status === "translated" && translation.engine
    ? ` by ${translation.engine} (${[].concat(translation.path || []).join(" → ")})` : "";
  return h("div", null,
    h("div", { class: hasEnglish ? "columns" : "columns single" },
      column(`Original · ${languageName(doc.language)}`, doc.language, doc.title, doc.body),
      hasEnglish ? column("English", "en", doc.title_en, doc.body_en) : null),
    h("p", { class: "provenance" },
      TRANSLATION[translation.status] || translation.status || "", how,
      translation.error ? ` — ${translation.error}` : "",
      url ? " · " : null,
      url ? h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, "Read at the source ↗")
        : null));
}

run();
