/* herschik what-if planner: the page. Plain JavaScript and Leaflet (vendored), no build step.
 *
 * Every scenario change posts the settings to /api/solve; the server solves with the same
 * verified solve as `herschik solve` and answers with a plan (map colours, KPIs, hospital
 * table) or, when the change is infeasible, a plain-words diagnosis with the nearest feasible
 * settings. An infeasible change leaves the plan on screen as it was.
 */
"use strict";

const S = {
  meta: null, region: null, layers: null, plan: null, previous: null,
  treatment: "all", colourBy: "extra", force: new Map(), busy: false, pending: null,
  solves: 0, plans: [], cmpPinned: false, viewBeforePopup: null,
  // why a hospital loses treatments, asked for when its popup opens: "plan|site" ->
  // {pending} | {rows} | {error}
  reasons: new Map(),
};
// hospital names on the map: drawn where they do not overlap (bigger and changed ones first)
const LABEL_HEIGHT_PX = 14;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// The page's language: the texts come from the one catalog (herschik/locale/nl.po), sent
// with /api/meta; a message without a translation shows as written (English).
const t = (msg, values = {}) => ((S.meta && S.meta.messages && S.meta.messages[msg]) || msg)
  .replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
const numberLocale = () => (S.meta && S.meta.language === "nl" ? "nl-NL" : "en-GB");
const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v)) ? "–"
  : Number(v).toLocaleString(numberLocale(),
    { maximumFractionDigits: d, minimumFractionDigits: d });
const fmtUnit = (v, unit) => unit === "share" ? fmt(100 * v, 1) + " %"
  : unit === "providers" ? fmt(v, 0) : unit === "min" ? fmt(v, 1) + " min" : fmt(v, 1);
const N_ = (msg) => msg; // marks a message for the catalog; t() translates it when shown
const STATUS_WORDS = {
  kept: N_("kept"), lost: N_("lost"), gained: N_("gained"), below_norm: N_("below norm"),
  unchanged_no_norm: N_("no norm"), loses_some: N_("loses some"),
  mixed: N_("loses and gains"), no_plan: N_("no plan"),
};
// a plan's status in words (a partial plan lacks a plan for some treatments)
const PLAN_STATUS_WORDS = {
  optimal: N_("optimal"), feasible: N_("feasible"),
  partially_infeasible: N_("partial (not every treatment has a plan)"),
};
const planStatusWord = (status) => t(PLAN_STATUS_WORDS[status] || status || "");
const statusWord = (status) => t(STATUS_WORDS[status] || status || "");
const STATUS_COLOURS = {
  kept: "#2c7bb6", lost: "#d7191c", gained: "#1a9641", below_norm: "#e66101",
  unchanged_no_norm: "#888888", loses_some: "#f4a582", mixed: "#7b3294", no_plan: "#ffffff",
};
const EXTRA_BINS = [[1, "#ffffcc"], [5, "#ffeda0"], [10, "#fed976"], [20, "#feb24c"],
  [30, "#fd8d3c"], [45, "#f03b20"], [Infinity, "#bd0026"]];
// pastel area colours (ColorBrewer Set3 + Pastel1), apart from the saturated hospital statuses
const PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
  "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f", "#fbb4ae", "#b3cde3", "#decbe4",
  "#fed9a6", "#e5d8bd", "#fddaec", "#f2f2f2", "#cbd5e8", "#f4cae4", "#e6f5c9", "#fff2ae"];

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
  if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
  return body;
}
// the session token the server wrote into the page: every state-changing request carries it
const TOKEN = (document.querySelector('meta[name="herschik-token"]') || {}).content || "";
const postJSON = (path, data) => api(path, {
  method: "POST",
  headers: { "Content-Type": "application/json", "X-Herschik-Token": TOKEN },
  body: JSON.stringify(data),
});

function setStatus(text, busy = false) {
  $("status").textContent = text;
  $("status").title = text; // the whole line, when the header has to cut it
  $("status").classList.toggle("busy", busy);
  document.body.dataset.busy = String(busy);
}

// --- map ---------------------------------------------------------------------------------
const map = L.map("map", { zoomControl: true, zoomSnap: 0.25, attributionControl: false });
let areaLayer = null;
const siteLayer = L.layerGroup().addTo(map);
const labelLayer = L.layerGroup().addTo(map);
// The legend lives in a strip under the map (index.html), so it never covers data.

// A popup may pan the map to fit; closing it puts the view back where the planner had it
// (unless they moved the map themselves meanwhile).
map.on("autopanstart", () => {
  if (!S.viewBeforePopup) S.viewBeforePopup = { center: map.getCenter(), zoom: map.getZoom() };
});
map.on("dragstart", () => { S.viewBeforePopup = null; });
map.on("popupclose", () => {
  const before = S.viewBeforePopup;
  S.viewBeforePopup = null;
  if (before) map.setView(before.center, before.zoom, { animate: false });
});
map.on("zoomend moveend", () => placeLabels());

function siteName(i) { return S.layers ? S.layers.sites[i].site_name : ""; }
function treatmentName(id) {
  if (id === "*") return t("all treatments");
  const found = S.meta.treatments.find((x) => x.id === id);
  return found ? found.name : id;
}
function view() {
  if (!S.plan) return null;
  return S.treatment === "all" ? S.plan.areas.all : S.plan.areas.treatments[S.treatment];
}
// a partial plan: the treatments without a plan (ids), and whether one is
const noPlan = (plan = S.plan) => (plan && plan.no_plan) || [];
const hasNoPlan = (id) => noPlan().includes(id);

function areaStyle(feature) {
  const i = feature.properties.i;
  const v = view();
  let fill = "#eeeeee";
  if (v && v.patients[i] > 0) {
    if (S.colourBy === "dest") {
      fill = v.dest[i] >= 0 ? PALETTE[v.dest[i] % PALETTE.length] : "#eeeeee";
    } else {
      const e = Math.max(0, v.extra[i] ?? 0);
      fill = EXTRA_BINS.find(([limit]) => e < limit)[1];
    }
  }
  return { color: "#555", weight: 0.6, fillColor: fill, fillOpacity: 0.75 };
}

function areaText(i) {
  const f = S.layers.areas.features[i].properties;
  const v = view();
  if (!v && S.plan && hasNoPlan(S.treatment)) {
    return `<b>${esc(f.area_name)}</b><br>${esc(t("no plan for {treatment}",
      { treatment: treatmentName(S.treatment) }))}`;
  }
  if (!v) return esc(f.area_name);
  const scope = S.treatment === "all" ? t("all treatments") : treatmentName(S.treatment);
  if (!(v.patients[i] > 0)) {
    return `<b>${esc(f.area_name)}</b><br>${esc(t("no patients ({scope})", { scope }))}`;
  }
  const dest = v.dest[i] >= 0 ? siteName(v.dest[i]) : "–";
  const before = v.dest_before[i] >= 0 ? siteName(v.dest_before[i]) : "–";
  return `<b>${esc(f.area_name)}</b> <span class="hint">${esc(f.area_id)}</span><br>` +
    `${esc(scope)}: ${esc(t("{count} patients/yr", { count: fmt(v.patients[i]) }))}<br>` +
    `${esc(t("mostly to"))} <b>${esc(dest)}</b>` +
    `${dest !== before ? ` (${esc(t("today: {hospital}", { hospital: before }))})` : ""}<br>` +
    esc(t("changing hospital: {moved}; extra travel {extra} min",
      { moved: fmt(v.moved[i]), extra: fmt(v.extra[i]) }));
}

function drawAreas() {
  if (areaLayer) map.removeLayer(areaLayer);
  areaLayer = L.geoJSON(S.layers.areas, {
    style: areaStyle,
    onEachFeature: (feature, layer) => {
      const i = feature.properties.i;
      layer.bindTooltip(() => areaText(i), { sticky: true });
      layer.bindPopup(() => areaText(i));
    },
  }).addTo(map);
  map.fitBounds(S.layers.bounds);
}

function siteRows(i) {
  return S.plan.hospitals.filter((r) => r.site_index === i &&
    (S.treatment === "all" || r.intervention_id === S.treatment));
}

function siteSummary(i) {
  const all = siteRows(i);
  if (!all.length) return null;
  if (S.treatment !== "all" && hasNoPlan(S.treatment)) {
    return { status: "no_plan", before: all.reduce((a, r) => a + r.volume_before, 0), after: 0,
      rows: all };
  }
  // all treatments of a partial plan: the treatments with a plan decide the colour
  const rows = all.filter((r) => r.status !== "no_plan");
  if (!rows.length) return { status: "no_plan", before: 0, after: 0, rows: all };
  const before = rows.reduce((a, r) => a + r.volume_before, 0);
  const after = rows.reduce((a, r) => a + r.volume_after, 0);
  if (S.treatment !== "all") return { status: rows[0].status, before, after, rows };
  const n = (s) => rows.filter((r) => r.status === s).length;
  const providing = rows.some((r) => r.volume_after > 1e-9 || ["kept", "gained", "below_norm"]
    .includes(r.status));
  let status = "kept";
  if (!providing && before > 0) status = "lost";
  else if (n("lost") && n("gained")) status = "mixed";
  else if (n("lost")) status = "loses_some";
  else if (n("gained")) status = "gained";
  else if (n("below_norm")) status = "below_norm";
  return { status, before, after, rows: all };
}

// the odds of meeting the norm as the report writes them: never a rounded 100 % or 0 %
function oddsText(p) {
  if (p === null || p === undefined) return "";
  if (p > 0.999) return "> 99.9%";
  if (p < 0.001) return "< 0.1%";
  return `${(100 * p).toFixed(1)}%`;
}

function siteText(i, withButtons) {
  const summary = siteSummary(i);
  const site = S.layers.sites[i];
  let html = `<div class="popup"><b>${esc(site.site_name)}</b><br>`;
  if (!summary) return html + esc(t("does not provide this treatment")) + "</div>";
  html += summary.status === "no_plan"
    ? esc(t("no plan for {treatment}", { treatment: treatmentName(S.treatment) }))
    : `${esc(statusWord(summary.status))}: ${fmt(summary.before)} → ` +
      esc(t("{count} patients/yr", { count: fmt(summary.after) }));
  if (!withButtons) return html + "</div>";
  html += "<table>";
  for (const r of summary.rows) {
    const key = `${r.site_id}|${r.intervention_id}`;
    const forced = S.force.get(key) || "";
    html += `<tr><td>${esc(t(r.intervention_name))}</td><td>${fmt(r.volume_before)} → ` +
      `${r.status === "no_plan" ? "?" : fmt(r.volume_after)}</td>` +
      `<td>${esc(statusWord(r.status))}</td>` +
      `<td title="${esc(t("odds of meeting the norm in a year"))}">` +
      `${oddsText(r.p_meet_norm_1y)}</td><td>` +
      ["keep", "close", ""].map((f) => `<button data-force="${f}" data-site="${esc(r.site_id)}" ` +
        `data-treatment="${esc(r.intervention_id)}" ${forced === f ? "disabled" : ""}>` +
        `${esc(forceWord(f))}</button>`).join("") + "</td></tr>";
  }
  html += "</table>" + siteWhy(summary.rows);
  const whole = S.force.get(`${site.site_id}|*`);
  html += (whole
    ? `<button data-force="" data-site="${esc(site.site_id)}" data-treatment="*">` +
      `${esc(t("reopen the whole hospital"))}</button>`
    : `<button data-force="close" data-site="${esc(site.site_id)}" data-treatment="*" ` +
      `data-testid="close-hospital">${esc(t("close the whole hospital (all treatments)"))}` +
      "</button>");
  return html + "</div>";
}

// why a lost treatment is lost, fragile kept ones, and where this hospital's patients go
// (the reason and flows.csv rows of the plan, as the CLI writes them). The plan carries no
// reasons: they are asked for when the popup opens (askReasons) and shown when they arrive.
function siteWhy(rows) {
  let html = "";
  for (const r of rows) {
    if (r.has_reason) {
      const asked = S.reasons.get(`${S.plan.id}|${r.site_id}`) || { pending: true };
      const found = (asked.rows || []).find((x) => x.intervention_id === r.intervention_id);
      html += `<p class="why${found ? "" : " pending"}" data-testid="${found ? "reason"
        : asked.error ? "reason-error" : "reason-pending"}" ` +
        `data-treatment="${esc(r.intervention_id)}"><b>${esc(t(r.intervention_name))}</b>: ` +
        (found ? esc(found.reason) : asked.error
          ? esc(t("could not work out why: {message}", { message: asked.error }))
          : esc(t("working out why it loses this treatment…"))) + "</p>";
    }
    if (r.fragile) {
      html += `<p class="why fragile"><b>${esc(t(r.intervention_name))}</b>: ` +
        `${esc(t("fragile, within 10 % of its required minimum"))}</p>`;
    }
  }
  const out = rows.filter((r) => (r.flows_out || []).length);
  if (!out.length) return html;
  html += `<b>${esc(t("Where its patients go"))}</b>` +
    '<table class="flows" data-testid="flows-out">';
  for (const r of out) {
    for (const f of r.flows_out) {
      html += `<tr><td>${esc(t(r.intervention_name))}</td><td>→ ${esc(f.site_name)}</td>` +
        `<td>${esc(t("{count}/yr", { count: fmt(f.patients) }))}</td><td>` +
        esc(t("+{mean} min (max {max})", { mean: fmt(f.mean_extra_min),
          max: fmt(f.max_extra_min) })) + "</td></tr>";
    }
  }
  return html + "</table>";
}
// the values of the force buttons and selects stay keep/close/"" (what the server reads)
const forceWord = (f) => (f === "keep" ? t("keep") : f === "close" ? t("close") : t("free"));

function drawSites() {
  siteLayer.clearLayers();
  if (!S.plan) return;
  const summaries = S.layers.sites.map((_, i) => siteSummary(i));
  const vmax = Math.max(1, ...summaries.filter(Boolean).map((s) => Math.max(s.before, s.after)));
  S.layers.sites.forEach((site, i) => {
    const summary = summaries[i];
    const status = summary ? summary.status : "none";
    const volume = summary ? (["lost", "no_plan"].includes(status) ? summary.before
      : summary.after) : 0;
    const marker = L.circleMarker([site.lat, site.lon], {
      radius: summary ? 4 + 14 * Math.sqrt(volume / vmax) : 3,
      color: status === "lost" ? STATUS_COLOURS.lost : (summary ? "#222" : "#999"),
      weight: status === "lost" ? 3 : 1,
      dashArray: status === "lost" ? "4 3" : status === "no_plan" ? "2 2" : null,
      fillColor: STATUS_COLOURS[status] || "#ffffff",
      fillOpacity: status === "lost" ? 0.55 : (summary ? 0.9 : 0.4),
      className: `site-marker status-${status}`,
    });
    marker.bindTooltip(() => siteText(i, false));
    marker.bindPopup(() => siteText(i, true), { maxWidth: 460 });
    marker.on("popupopen", () => askReasons(i, marker));
    marker.addTo(siteLayer);
    const el = marker.getElement();
    if (el) { el.setAttribute("data-site-id", site.site_id); el.setAttribute("data-status", status); }
    site._radius = marker.getRadius();
    site._rank = (["lost", "gained", "mixed", "loses_some"].includes(status) ? 1e9 : 0) + volume;
  });
  placeLabels();
}

// Why the hospital loses what it loses in the plan on screen: asked once per plan and
// hospital (the server works it out by re-solving, seconds in a large region); the popup
// shows "working out why" meanwhile and is redrawn when the answer comes, if still open.
async function askReasons(i, marker) {
  const plan = S.plan;
  const site = S.layers.sites[i].site_id;
  const key = `${plan.id}|${site}`;
  const known = S.reasons.get(key);
  if (!plan.hospitals.some((r) => r.site_index === i && r.has_reason) ||
    (known && !known.error)) return;
  S.reasons.set(key, { pending: true });
  try {
    const answer = await api(`/api/plans/${plan.id}/hospitals/` +
      `${encodeURIComponent(site)}/reasons`);
    S.reasons.set(key, { rows: answer.reasons });
  } catch (error) {
    S.reasons.set(key, { error: error.message }); // asked again when opened again
  }
  if (S.plan === plan && marker.isPopupOpen()) marker.getPopup().update();
}

function shortName(name) {
  const short = name.replace(/\b(Ziekenhuis|Medisch Centrum|Medisch Centre|Hospital)\b/g, "")
    .replace(/\s+/g, " ").trim();
  return short.length >= 4 ? short : name;
}

// Hospital names beside their markers, greedily: the most important first (changed, then
// bigger), a name only where its drawn box overlaps no other name and stays on the map.
// Zooming in makes room for more.
function placeLabels() {
  labelLayer.clearLayers();
  if (!S.layers || !S.plan) return;
  const frame = $("map").getBoundingClientRect();
  const placed = [];
  const order = S.layers.sites.map((site, i) => i)
    .sort((a, b) => (S.layers.sites[b]._rank || 0) - (S.layers.sites[a]._rank || 0));
  for (const i of order) {
    const site = S.layers.sites[i];
    const label = L.marker([site.lat, site.lon], {
      interactive: false, keyboard: false,
      icon: L.divIcon({ className: "site-label", html: esc(shortName(site.site_name)),
        iconSize: null, iconAnchor: [-((site._radius || 4) + 2), LABEL_HEIGHT_PX / 2] }),
    }).addTo(labelLayer);
    const el = label.getElement();
    const box = el.getBoundingClientRect();
    const inside = box.left >= frame.left && box.top >= frame.top && box.right <= frame.right &&
      box.bottom <= frame.bottom;
    if (!inside || placed.some((b) => b.left < box.right && box.left < b.right &&
      b.top < box.bottom && box.top < b.bottom)) {
      labelLayer.removeLayer(label);
      continue;
    }
    el.setAttribute("data-site-id", site.site_id);
    placed.push(box);
  }
  document.body.dataset.labels = String(placed.length);
}

function drawLegend() {
  const div = $("legend");
  if (!div) return;
  const item = (colour, text, dot = false) =>
    `<span class="item"><i class="${dot ? "dot" : ""}" style="background:${colour}"></i>` +
    `${text}</span>`;
  let html = `<b>${esc(t("Hospitals:"))}</b>`;
  for (const s of (S.treatment === "all" ? ["kept", "loses_some", "lost", "gained", "mixed"]
    : ["kept", "lost", "gained", "below_norm", "unchanged_no_norm"])) {
    html += item(STATUS_COLOURS[s], esc(statusWord(s)), true);
  }
  if (noPlan().length) html += item(STATUS_COLOURS.no_plan, esc(statusWord("no_plan")), true);
  html += `<span class='item hint'>${esc(t("size: patients/yr after (lost: before)"))}</span> `;
  if (S.colourBy === "extra") {
    html += `<b>${esc(t("Areas, extra travel (min):"))}</b>`;
    let lo = 0;
    for (const [limit, colour] of EXTRA_BINS) {
      html += item(colour, `${lo}${limit === Infinity ? "+" : "–" + limit}`);
      lo = limit;
    }
  } else {
    html += `<b>${esc(t("Areas, their main hospital:"))}</b>`;
    const v = view();
    const used = v ? [...new Set(v.dest.filter((d, i) => d >= 0 && v.patients[i] > 0))] : [];
    for (const d of used.sort((a, b) => siteName(a).localeCompare(siteName(b)))) {
      html += item(PALETTE[d % PALETTE.length], esc(siteName(d)));
    }
  }
  div.innerHTML = html;
}

function redraw() {
  const started = performance.now();
  drawPartial();
  markTreatments();
  if (areaLayer) areaLayer.setStyle(areaStyle);
  drawSites();
  drawLegend();
  drawKpis();
  drawHospitals();
  document.body.dataset.redrawMs = String(Math.round(performance.now() - started));
}

// --- a partial plan ----------------------------------------------------------------------
// Some treatments have no plan: the map, figures and tables show the others; this box names
// the missing ones with their diagnosis and offers the nearest settings that plan them all.
function drawPartial() {
  const box = $("partial");
  const info = S.plan && S.plan.partial;
  document.body.dataset.partial = String(Boolean(info));
  box.hidden = !info;
  if (!info) { box.innerHTML = ""; return; }
  box.innerHTML = `<h3>${esc(t("Partial plan: no plan for {count} of {total} treatments",
    { count: info.treatments.length, total: info.total }))}</h3>` +
    `<p class="hint">${esc(t("The map, key figures and tables show the other treatments."))}` +
    '</p><ul data-testid="no-plan-treatments">' +
    info.treatments.map((x) => `<li data-treatment="${esc(x.id)}"><b>${esc(x.name)}</b>` +
      (x.reasons.length ? `: ${x.reasons.map(esc).join("; ")}` : "") + "</li>").join("") +
    "</ul>" + (info.suggestions.length
    ? `<p class="hint">${esc(t("Nearest settings with a plan for every treatment:"))}</p>` +
      info.suggestions.map((x, n) => `<button data-suggestion="${n}">${esc(x.text)}</button>`)
        .join("") : "");
  box._suggestions = info.suggestions;
}

// the treatment list says which treatments have no plan
function markTreatments() {
  for (const option of $("treatment").options) {
    if (option.value === "all") continue;
    const name = treatmentName(option.value);
    option.textContent = hasNoPlan(option.value) ? t("{treatment} (no plan)", { treatment: name })
      : name;
    option.classList.toggle("no-plan", hasNoPlan(option.value));
  }
}

// --- panels ------------------------------------------------------------------------------
function kpiRowsOf(plan) {
  if (!plan) return [];
  return S.treatment === "all" ? plan.kpi_rows.all : plan.kpi_rows.treatments[S.treatment] || [];
}

function drawKpis() {
  const rows = kpiRowsOf(S.plan);
  const previous = new Map(kpiRowsOf(S.previous).map((r) => [r.key, r.value]));
  $("kpi-scope").textContent = `(${S.treatment === "all"
    ? (noPlan().length ? t("the treatments with a plan") : t("all treatments"))
    : treatmentName(S.treatment)})`;
  $("kpi-note").textContent = S.treatment !== "all" && hasNoPlan(S.treatment)
    ? t("No plan for this treatment: see the box above.") : "";
  $("kpis").querySelector("tbody").innerHTML = rows.map((r) => {
    const was = previous.has(r.key) ? previous.get(r.key) : null;
    const changed = was !== null && Math.abs(was - r.value) > 1e-6;
    return `<tr data-kpi="${esc(r.key)}"><td>${esc(t(r.label))}</td>` +
      `<td class="value ${changed ? "changed" : ""}">${fmtUnit(r.value, r.unit)}</td>` +
      `<td class="hint">${was === null ? "" : fmtUnit(was, r.unit)}</td></tr>`;
  }).join("");
  const p = S.plan;
  const violations = (p.verification && p.verification.violations) || [];
  $("verification").textContent = t("{plan}: {status}, solved in {seconds} s; ",
    { plan: p.name, status: planStatusWord(p.status), seconds: fmt(p.seconds, 2) }) +
    (violations.length ? t("verifier found {count} problem(s): {first}",
      { count: violations.length, first: violations[0] })
      : t("independent verifier: every constraint holds"));
  $("warnings").innerHTML = (p.warnings || []).map((w) => `<li>${esc(w)}</li>`).join("");
  drawReuse(p.reuse);
}

// How the plan was obtained: which treatments' results were re-used (model unchanged) and
// which were solved; either way the plan is the one a fresh `herschik solve` gives.
function drawReuse(reuse) {
  const box = $("reuse");
  if (!reuse) { box.textContent = ""; box.title = ""; delete box.dataset.reused; return; }
  box.dataset.reused = String(reuse.reused);
  box.dataset.solved = String(reuse.counts.resolved);
  box.textContent = t("How: {text} in {seconds} s", { text: reuse.text,
    seconds: fmt(reuse.seconds, 2) }) +
    (reuse.first ? "." : t("; the same plan as a fresh solve of these settings."));
  box.title = reuse.details.join("\n");
}

function drawHospitals() {
  const onlyChanges = $("only-changes").checked;
  const rows = S.plan.hospitals.filter((r) => (S.treatment === "all" ||
    r.intervention_id === S.treatment) &&
    (!onlyChanges || ["lost", "gained", "below_norm", "no_plan"].includes(r.status)))
    .sort((a, b) => a.site_name.localeCompare(b.site_name) ||
      a.intervention_name.localeCompare(b.intervention_name));
  $("hospitals").querySelector("tbody").innerHTML = rows.map((r) => {
    const key = `${r.site_id}|${r.intervention_id}`;
    const whole = S.force.get(`${r.site_id}|*`);
    const forced = S.force.get(key) || "";
    const options = whole ? `<option selected>${esc(t("{force} (whole hospital)",
      { force: forceWord(whole) }))}</option>`
      : ["", "keep", "close"].map((f) =>
        `<option value="${f}" ${f === forced ? "selected" : ""}>${esc(forceWord(f))}</option>`)
        .join("");
    return `<tr class="${forced || whole ? "forced" : ""}" data-site-id="${esc(r.site_id)}" ` +
      `data-treatment="${esc(r.intervention_id)}" data-status="${esc(r.status || "")}">` +
      `<td>${esc(r.site_name)}</td><td>${esc(t(r.intervention_name))}</td>` +
      `<td>${fmt(r.norm, 0)}</td><td>${fmt(r.required_min, 1)}</td>` +
      `<td>${fmt(r.volume_before)}</td>` +
      `<td>${r.status === "no_plan" ? "?" : fmt(r.volume_after)}</td>` +
      `<td>${r.volume_change > 0 ? "+" : ""}${fmt(r.volume_change)}</td>` +
      `<td>${r.status ? `<span class="status status-${r.status}">` +
        `${esc(statusWord(r.status))}</span>` : ""}</td>` +
      `<td class="odds">${oddsText(r.p_meet_norm_1y)}</td>` +
      `<td><select class="force" ${whole ? "disabled" : ""} data-site="${esc(r.site_id)}" ` +
      `data-treatment="${esc(r.intervention_id)}">${options}</select></td></tr>`;
  }).join("");
}

function drawForced() {
  const items = [...S.force.entries()].map(([key, what]) => {
    const [site, treatment] = key.split("|");
    const row = S.plan && S.plan.hospitals.find((r) => r.site_id === site);
    const name = row ? row.site_name : site;
    return `<li>${esc(t("{force} {treatment} at {hospital}", { force: forceWord(what),
      treatment: treatmentName(treatment), hospital: name }))} ` +
      `<button data-unforce="${esc(key)}" title="${esc(t("remove"))}">✕</button></li>`;
  });
  $("forced").innerHTML = items.length ? items.join("")
    : `<li class="hint">${esc(t("None: click a hospital on the map or use the table below."))}` +
      "</li>";
}

async function refreshPlans() {
  S.plans = (await api("/api/plans")).plans;
  const rows = S.plans.slice().reverse();
  // A and B follow the two newest plans (A the older) until the planner picks one; then
  // their choice stays across refreshes (a choice whose plan is gone falls back).
  const chosen = (name, n) => {
    const current = document.querySelector(`input[name=${name}]:checked`);
    if (S.cmpPinned && current && rows.some((p) => String(p.id) === current.value)) {
      return current.value;
    }
    return rows[n] ? String(rows[n].id) : null;
  };
  const chosenA = chosen("cmp-a", 1), chosenB = chosen("cmp-b", 0);
  $("plans").querySelector("tbody").innerHTML = rows.map((p) =>
    `<tr data-plan-id="${p.id}"><td><input type="radio" name="cmp-a" value="${p.id}" ` +
    `${String(p.id) === chosenA ? "checked" : ""}></td><td><input type="radio" name="cmp-b" ` +
    `value="${p.id}" ${String(p.id) === chosenB ? "checked" : ""}></td><td>${esc(p.name)}${S.plan && S.plan.id === p.id
      ? ` (${esc(t("on screen"))})` : ""}</td><td>${esc(p.description)}` +
    `${p.no_plan.length ? ` <span class="no-plan-mark" data-testid="plan-partial">` +
      `${esc(t("no plan for {count} treatment(s)", { count: p.no_plan.length }))}</span>`
      : ""}</td>` +
    `<td>${fmt(p.patients_moved)}</td>` +
    `<td>${fmt(p.patients_displaced)}</td><td>${fmt(p.mean_extra_min)}</td>` +
    `<td>${p.providers_before} → ${p.providers_after}</td>` +
    `<td><button data-show="${p.id}">${esc(t("show"))}</button> ` +
    `<button data-export="${p.id}" data-testid="export-${p.id}">${esc(t("export"))}</button>` +
    "</td></tr>").join("");
  drawCompareChoice();
}

function drawCompareChoice() {
  const a = document.querySelector("input[name=cmp-a]:checked");
  const b = document.querySelector("input[name=cmp-b]:checked");
  const name = (el) => (S.plans.find((p) => String(p.id) === el.value) || {}).name || el.value;
  const ok = a && b && a.value !== b.value;
  $("compare").disabled = !ok;
  $("compare").textContent = ok ? t("Compare {a} (A) and {b} (B)", { a: name(a), b: name(b) })
    : t("Compare A and B");
  $("compare-hint").textContent = !a || !b ? t("A comparison needs two plans: change a setting.")
    : a.value === b.value ? t("Choose two different plans for A and B.")
    : S.cmpPinned ? t("Your choice of A and B stays until you reload.")
    : t("A and B follow the two newest plans until you pick others.");
}

// --- controls ----------------------------------------------------------------------------
const OBJECTIVE_WORDS = {
  planner: N_("planner: move only who must, then least travel"),
  travel: N_("least total travel"), moved: N_("fewest patients moved"),
  providers: N_("most providers kept, then least travel"),
};
const objectiveWord = (o) => t(OBJECTIVE_WORDS[o] || o);
// the settings of a comparison, by the labels of their fields
const SETTING_WORDS = {
  region_id: N_("Region"), margin: N_("Margin over the norm (%)"),
  norm_confidence: N_("Confidence of meeting the norm"), max_travel: N_("Travel limit (min)"),
  max_extra_travel: N_("Extra-travel limit (min)"),
  max_loss_share: N_("Max loss per hospital (%)"), objective: N_("Objective"),
  force_keep: N_("forced keep"), force_close: N_("forced close"),
};
function numberOrNull(id) {
  const text = $(id).value.trim().replace(",", ".");
  return text === "" ? null : Number(text);
}

// Percentages on screen, shares (0.1) in the settings; [id, label, lowest, highest %]
const PERCENT_FIELDS = [["margin", N_("Margin over the norm"), 0, 500],
  ["max_loss_share", N_("Max loss per hospital"), 0, 100]];
const fromPercent = (v) => v === null ? null : Math.round(v * 1e6) / 1e8;
const toPercent = (v) => v === null || v === undefined ? "" : String(Math.round(v * 1e8) / 1e6);

// One readable line per field that is not a number in its range; none: the settings are ok.
function inputProblems() {
  const problems = [];
  for (const [id, label, lo, hi] of PERCENT_FIELDS) {
    const v = numberOrNull(id);
    const bad = v !== null && (!Number.isFinite(v) || v < lo || v > hi);
    $(id).classList.toggle("invalid", bad);
    if (bad) {
      problems.push(t("{field}: enter a percentage from {low} to {high} (e.g. 10 for 10 %).",
        { field: t(label), low: lo, high: hi }));
    }
  }
  for (const [id, label] of [["max_travel", N_("Travel limit")], ["max_extra_travel",
    N_("Extra-travel limit")]]) {
    const v = numberOrNull(id);
    const bad = v !== null && (!Number.isFinite(v) || v < 0);
    $(id).classList.toggle("invalid", bad);
    if (bad) {
      problems.push(t("{field}: enter minutes (0 or more), or leave it empty for none.",
        { field: t(label) }));
    }
  }
  $("input-error").hidden = problems.length === 0;
  $("input-error").textContent = problems.join(" ");
  return problems;
}

function readSettings() {
  const force_keep = [], force_close = [];
  for (const [key, what] of S.force) {
    const [site_id, intervention_id] = key.split("|");
    (what === "keep" ? force_keep : force_close).push({ site_id, intervention_id });
  }
  return {
    // a confidence replaces the margin (the server refuses both)
    region_id: S.region, norm_confidence: numberOrNull("norm_confidence"),
    margin: numberOrNull("norm_confidence") === null
      ? (fromPercent(numberOrNull("margin")) ?? 0) : 0,
    max_travel: numberOrNull("max_travel"), max_extra_travel: numberOrNull("max_extra_travel"),
    max_loss_share: fromPercent(numberOrNull("max_loss_share")),
    objective: $("objective").value || null,
    force_keep, force_close,
  };
}

function writeSettings(settings) {
  $("margin").value = toPercent(settings.margin ?? 0);
  $("norm_confidence").value = settings.norm_confidence ?? "";
  $("margin").disabled = settings.norm_confidence !== null && settings.norm_confidence !== undefined;
  $("max_loss_share").value = toPercent(settings.max_loss_share);
  for (const id of ["max_travel", "max_extra_travel"]) {
    $(id).value = settings[id] === null || settings[id] === undefined ? "" : settings[id];
  }
  inputProblems();
  $("objective").value = settings.objective || S.meta.defaults.objective;
  S.force = new Map();
  for (const p of settings.force_keep || []) S.force.set(`${p.site_id}|${p.intervention_id}`, "keep");
  for (const p of settings.force_close || []) S.force.set(`${p.site_id}|${p.intervention_id}`, "close");
  drawForced();
}

function showInfeasible(info) {
  const box = $("infeasible");
  box.hidden = false;
  box.innerHTML = `<h3>${esc(t("That change is infeasible"))}</h3>` +
    `<p class="hint">${esc(t("Asked for: {settings}", { settings: info.requested_text }))}</p>` +
    `<p>${esc(info.reason)}</p>` +
    (info.reasons && info.reasons.length > 1
      ? `<ul>${info.reasons.slice(1).map((r) => `<li>${esc(r)}</li>`).join("")}</ul>` : "") +
    `<p class="hint">${esc(t("The plan on screen is unchanged. Nearest feasible settings:"))}` +
    "</p>" +
    info.suggestions.map((s, n) => `<button data-suggestion="${n}">${esc(s.text)}</button>`)
      .join("") + `<button data-dismiss="1">${esc(t("Dismiss"))}</button>`;
  box._suggestions = info.suggestions;
}

async function solve(settings) {
  if (S.busy) { S.pending = settings; return; }
  S.busy = true;
  $("error").hidden = true;
  setStatus(t("Solving…"), true);
  try {
    const result = await postJSON("/api/solve", {
      settings, base_plan_id: S.plan && S.plan.region_id === settings.region_id ? S.plan.id : null,
    });
    S.solves += 1;
    document.body.dataset.solves = String(S.solves);
    if (settings.region_id !== S.region) {
      // another region was chosen meanwhile: this answer is not for the map on screen
    } else if (result.status === "infeasible") {
      showInfeasible(result.infeasible);
      if (S.plan) writeSettings(S.plan.settings);
      setStatus(t("Infeasible ({seconds} s): previous plan kept",
        { seconds: fmt(result.seconds, 2) }));
    } else {
      $("infeasible").hidden = true;
      S.previous = S.plan && S.plan.region_id === result.plan.region_id ? S.plan : null;
      S.plan = result.plan;
      document.body.dataset.planId = String(S.plan.id);
      writeSettings(S.plan.settings);
      redraw();
      // the plans list first: the status line ends the busy state, and a page that says it
      // is ready must show the new plan in its list (and in the compare choice)
      await refreshPlans();
      setStatus(t("{plan}: {status} in {seconds} s", { plan: S.plan.name,
        status: planStatusWord(S.plan.status), seconds: fmt(S.plan.seconds, 2) }));
    }
  } catch (error) {
    $("error").hidden = false;
    $("error").textContent = t("Could not solve: {message}", { message: error.message });
    if (S.plan) writeSettings(S.plan.settings);
    setStatus(t("Error"));
  } finally {
    S.busy = false;
    if (S.pending) { const next = S.pending; S.pending = null; solve(next); }
  }
}

async function loadRegion(region, settings = null) {
  S.region = region;
  $("region").value = region;
  setStatus(t("Loading {region}…", { region }), true);
  S.layers = await api(`/api/regions/${encodeURIComponent(region)}/map`);
  S.plan = null;
  S.previous = null;
  $("infeasible").hidden = true;
  siteLayer.clearLayers();
  drawAreas();
  const start = settings || { region_id: region, ...S.meta.defaults, force_keep: [], force_close: [] };
  writeSettings(start);
  await solve(readSettings());
}

async function showPlan(id) {
  const plan = await api(`/api/plans/${id}`);
  if (plan.region_id !== S.region) {
    S.region = plan.region_id;
    $("region").value = plan.region_id;
    S.layers = await api(`/api/regions/${encodeURIComponent(plan.region_id)}/map`);
    drawAreas();
  }
  S.previous = S.plan && S.plan.region_id === plan.region_id ? S.plan : null;
  S.plan = plan;
  document.body.dataset.planId = String(plan.id);
  writeSettings(plan.settings);
  redraw();
  await refreshPlans();
  setStatus(t("{plan} on screen", { plan: plan.name }));
}

function setForce(site, treatment, what) {
  const key = `${site}|${treatment}`;
  if (what) S.force.set(key, what); else S.force.delete(key);
  drawForced();
  solve(readSettings());
}

async function compare() {
  const a = document.querySelector("input[name=cmp-a]:checked");
  const b = document.querySelector("input[name=cmp-b]:checked");
  if (!a || !b) return;
  const c = await api(`/api/compare?a=${a.value}&b=${b.value}`);
  const value = (v, key) => Array.isArray(v) ? (v.length ? v.map(esc).join("<br>") : "–")
    : (v === null ? t("none") : PERCENT_FIELDS.some(([id]) => id === key)
      ? `${toPercent(v)} %` : key === "objective" ? esc(objectiveWord(v)) : esc(v));
  const partialNote = [c.a, c.b].filter((p) => p.no_plan.length).map((p) =>
    `<p class="no-plan-mark">${esc(t("{plan} has no plan for {treatments}: its key figures " +
      "cover the other treatments only.", { plan: p.name,
      treatments: p.no_plan.map(treatmentName).join(", ") }))}</p>`).join("");
  let html = `<h3>${esc(t("{a} (A) and {b} (B)", { a: c.a.name, b: c.b.name }))}</h3>` +
    partialNote + '<table class="data">' +
    `<tr><th>${esc(t("setting"))}</th><th>A</th><th>B</th></tr>` +
    c.settings.map((s) => `<tr data-setting="${esc(s.key)}">` +
      `<td>${esc(SETTING_WORDS[s.key] ? t(SETTING_WORDS[s.key]) : s.key)}</td>` +
      `<td>${value(s.a, s.key)}</td>` +
      `<td>${value(s.b, s.key)}</td></tr>`).join("") + "</table>";
  html += `<h3>${esc(t("Key figures"))}</h3>` +
    `<table class="data" data-testid="compare-kpis"><tr><th></th>` +
    `<th>A</th><th>B</th><th>B − A</th></tr>` + c.kpis.map((k) =>
      `<tr data-kpi="${esc(k.key)}"><td>${esc(t(k.label))}</td><td>${fmtUnit(k.a, k.unit)}</td>` +
      `<td>${fmtUnit(k.b, k.unit)}</td><td>${k.diff === null ? "" : fmtUnit(k.diff, k.unit)}` +
      `</td></tr>`).join("") + "</table>";
  html += `<h3>${esc(t("Hospitals whose outcome differs ({count})",
    { count: c.hospitals.length }))}</h3>` +
    `<table class="data" data-testid="compare-hospitals"><tr><th>${esc(t("hospital"))}</th>` +
    `<th>${esc(t("treatment"))}</th><th>${esc(t("today"))}</th><th>A</th><th>B</th></tr>` +
    c.hospitals.map((h) =>
      `<tr><td>${esc(h.site_name)}</td><td>${esc(t(h.intervention_name))}</td>` +
      `<td>${fmt(h.volume_before)}</td><td>${esc(h.a_status ? statusWord(h.a_status) : "–")} ` +
      `${fmt(h.a_volume)}</td><td>${esc(h.b_status ? statusWord(h.b_status) : "–")} ` +
      `${fmt(h.b_volume)}` +
      `</td></tr>`).join("") + "</table>";
  $("comparison").innerHTML = html;
}

async function exportPlan(id) {
  const box = $("export-result");
  box.textContent = t("Exporting plan {id}: running herschik solve on its scenario file…",
    { id });
  try {
    const r = await postJSON(`/api/plans/${id}/export`, {});
    box.innerHTML = `<b>${esc(t("Exported to"))} <code data-testid="export-folder">` +
      `${esc(r.folder)}</code></b> ` + esc(t("(in the app's --out folder), {count} files, " +
        "{seconds} s.", { count: r.files.length, seconds: fmt(r.seconds, 1) })) + " " +
      (r.same_as_app ? `<span data-testid="export-same">${esc(t("The command line gives " +
        "the same result as the app (KPIs equal, CSVs identical byte for byte)."))}</span>`
        : `<span data-testid="export-differs">${esc(t("The command line result differs " +
          "from the app in: {fields}", { fields: r.differences.join(", ") }))}</span>`) +
      `<br>${esc(t("Re-run:"))} <code>cd ${esc(r.folder)} && ${esc(r.command)}</code>`;
  } catch (error) {
    box.textContent = t("Export failed: {message}", { message: error.message });
  }
}

// --- events ------------------------------------------------------------------------------
for (const id of ["margin", "norm_confidence", "max_travel", "max_extra_travel",
  "max_loss_share", "objective"]) {
  // a value out of range is explained beside the fields and not sent
  $(id).addEventListener("change", () => { if (!inputProblems().length) solve(readSettings()); });
}
$("plans").addEventListener("change", (event) => {
  if (event.target.name === "cmp-a" || event.target.name === "cmp-b") {
    S.cmpPinned = true;
    drawCompareChoice();
  }
});
$("toggle-bottom").addEventListener("click", () => {
  const collapsed = $("bottom").classList.toggle("collapsed");
  $("toggle-bottom").textContent = collapsed ? t("Show ▴") : t("Hide ▾");
  map.invalidateSize();
});
$("region").addEventListener("change", () => loadRegion($("region").value));
$("treatment").addEventListener("change", () => { S.treatment = $("treatment").value; redraw(); });
$("colour-by").addEventListener("change", () => { S.colourBy = $("colour-by").value; redraw(); });
$("only-changes").addEventListener("change", () => { if (S.plan) drawHospitals(); });
$("reset").addEventListener("click", () => {
  writeSettings({ region_id: S.region, ...S.meta.defaults, force_keep: [], force_close: [] });
  solve(readSettings());
});
$("hospitals").addEventListener("change", (event) => {
  const el = event.target;
  if (el.classList.contains("force")) setForce(el.dataset.site, el.dataset.treatment, el.value);
});
$("forced").addEventListener("click", (event) => {
  const key = event.target.dataset.unforce;
  if (key) { S.force.delete(key); drawForced(); solve(readSettings()); }
});
$("map").addEventListener("click", (event) => {
  const el = event.target;
  if (el.dataset && el.dataset.force !== undefined && el.dataset.site) {
    map.closePopup();
    setForce(el.dataset.site, el.dataset.treatment, el.dataset.force);
  }
});
$("infeasible").addEventListener("click", (event) => {
  const box = $("infeasible");
  if (event.target.dataset.dismiss) { box.hidden = true; return; }
  const n = event.target.dataset.suggestion;
  if (n !== undefined) {
    const settings = box._suggestions[Number(n)].settings;
    writeSettings(settings);
    solve(readSettings());
  }
});
$("partial").addEventListener("click", (event) => {
  const n = event.target.dataset.suggestion;
  if (n !== undefined) {
    writeSettings($("partial")._suggestions[Number(n)].settings);
    solve(readSettings());
  }
});
$("plans").addEventListener("click", (event) => {
  if (event.target.dataset.show) showPlan(Number(event.target.dataset.show));
  if (event.target.dataset.export) exportPlan(Number(event.target.dataset.export));
});
$("compare").addEventListener("click", compare);
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const pane of document.querySelectorAll(".tabpane")) {
      pane.hidden = pane.id !== `tab-${tab.dataset.tab}`;
    }
  });
}

// the page's fixed texts (data-i18n: the text, data-i18n-title: the tooltip) in its language
function translatePage() {
  document.documentElement.lang = S.meta.language;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.dataset.source = el.dataset.source || el.textContent.replace(/\s+/g, " ").trim();
    el.textContent = t(el.dataset.source);
  }
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.dataset.sourcePlaceholder = el.dataset.sourcePlaceholder || el.placeholder;
    el.placeholder = t(el.dataset.sourcePlaceholder);
  }
  for (const el of document.querySelectorAll("[data-i18n-title]")) {
    el.dataset.sourceTitle = el.dataset.sourceTitle || el.title.replace(/\s+/g, " ").trim();
    el.title = t(el.dataset.sourceTitle);
  }
}

// The language switch: the choice is a cookie the server reads on every request (texts it
// writes, such as diagnoses, follow it too); the page reloads in that language.
$("lang").addEventListener("change", () => {
  document.cookie = `herschik_lang=${$("lang").value}; path=/; SameSite=Strict`;
  location.reload();
});

async function start() {
  S.meta = await api("/api/meta");
  translatePage();
  $("lang").value = S.meta.language;
  $("region").innerHTML = S.meta.regions.map((r) =>
    `<option value="${esc(r.id)}">${esc(r.name)} (${esc(t("{areas} areas, {sites} hospitals",
      { areas: r.areas, sites: r.sites }))})</option>`).join("");
  $("treatment").innerHTML = `<option value="all">${esc(t("all treatments"))}</option>` +
    S.meta.treatments.map((x) => `<option value="${esc(x.id)}">${esc(x.name)}</option>`)
      .join("");
  $("objective").innerHTML = S.meta.objectives.map((o) =>
    `<option value="${esc(o)}">${esc(objectiveWord(o))}</option>`).join("");
  $("baseline-source").textContent = S.meta.baseline_source_text || "";
  $("baseline-source").title = S.meta.baseline_source_text || "";
  $("baseline-note").textContent = S.meta.baseline === "illustrative"
    ? t("The baseline volumes of the embedded data are illustrative (see DATA.md).") : "";
  await loadRegion(S.meta.first_region);
}
start().catch((error) => { setStatus(t("Error")); $("error").hidden = false;
  $("error").textContent = error.message; });
