/* The leader dashboard and the big screen (/stats/, /stats/screen/): one script.
 *
 * The page carries its configuration in #stats-config (the scope, the period, the
 * endpoints, the words). Figures come from /stats/data/ (JSON assembled from the
 * statistics rollups), outlines from /stats/geo/ (cached per grid-tree version), the
 * heat map's cells from /stats/heat/. Clicking an area drills down one level (the
 * URL follows, the browser's back button and the trail go back up); the big screen
 * fetches the figures again every `refresh` seconds without reloading the page.
 * Without a configured basemap no tile layer is made: nothing is fetched from outside. */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("stats-config").textContent);
  const S = cfg.strings;
  const SCREEN = cfg.mode === "screen";
  const state = { grid: cfg.grid, period: cfg.period, metric: "received", data: null, geo: null, seq: 0 };

  const PALETTES = {
    received: ["#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c"],
    overdue: ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
    satisfaction_rate: ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"],
  };
  const RATE_BREAKS = [0.6, 0.7, 0.8, 0.9];
  const NO_DATA = SCREEN ? "#3b4a5e" : "#d0d5dd";
  const TEXT = SCREEN ? "#cfe3ff" : "#344054";
  const LINE = SCREEN ? "rgba(120,160,220,.25)" : "#e4e7ec";
  const SERIES_COLORS = ["#3b82f6", "#22c55e", "#ef4444", "#f59e0b", "#a855f7", "#06b6d4", "#ec4899"];

  // -- small helpers ----------------------------------------------------------------------
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function isRate(name) { return /_rate$/.test(name); }

  function fmt(name, value) {
    if (value === null || value === undefined) return S.noRate;
    if (isRate(name)) return (value * 100).toFixed(1) + "%";
    if (name === "score" || /_score$/.test(name) || /_hours$/.test(name)) return Number(value).toFixed(1);
    return Number(value).toLocaleString("zh-CN");
  }

  function query(extra) {
    const p = new URLSearchParams({ grid: String(state.grid), ...state.period });
    Object.entries(extra || {}).forEach(([k, v]) => p.set(k, v));
    return p.toString();
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        const type = response.headers.get("content-type") || "";
        if (response.redirected || !type.includes("json")) throw new Error(S.sessionExpired);
        return response.json().then((body) => {
          if (!response.ok) throw new Error(body.error || S.loadFailed);
          return body;
        });
      });
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function status(text, bad) {
    $$("[data-status]").forEach((node) => {
      node.textContent = text;
      node.classList.toggle("bad", Boolean(bad));
    });
  }

  // -- KPI tiles, tables, feed -----------------------------------------------------------
  function drawKpis(kpis) {
    $$("[data-kpi]").forEach((tile) => {
      const name = tile.dataset.kpi;
      $(".kpi-n", tile).textContent = fmt(name, kpis[name]);
      tile.classList.toggle("kpi-alert", /overdue/.test(name) && kpis[name] > 0);
    });
  }

  function bandChip(row) {
    const chip = el("span", { class: "band" }, row.band || "–");
    if (row.band_color) chip.style.background = row.band_color;
    return chip;
  }

  function drawLeague(rows) {
    $$("[data-league]").forEach((table) => {
      const body = $("tbody", table);
      const columns = (table.dataset.columns || "").split(",");
      const limit = Number(table.dataset.limit || 0) || rows.length;
      body.replaceChildren();
      rows.slice(0, limit).forEach((row) => {
        const tr = el("tr");
        columns.forEach((name) => {
          if (name === "band") {
            const td = el("td");
            td.appendChild(bandChip(row));
            tr.appendChild(td);
          } else if (name === "name") {
            tr.appendChild(el("td", { class: "name" }, row.name));
          } else {
            tr.appendChild(el("td", { class: "num" }, fmt(name, row[name])));
          }
        });
        body.appendChild(tr);
      });
      if (!rows.length) {
        const tr = el("tr");
        tr.appendChild(el("td", { colspan: String(columns.length), class: "muted" }, S.noData));
        body.appendChild(tr);
      }
    });
  }

  function drawAreas(rows) {
    $$("[data-areas]").forEach((table) => {
      const body = $("tbody", table);
      body.replaceChildren();
      rows.forEach((row) => {
        const tr = el("tr", { "data-grid": String(row.grid_id) });
        const name = el("td", { class: "name" });
        if (row.level < 3) {
          const link = el("a", { href: "?" + query({ grid: row.grid_id }) }, row.name);
          link.addEventListener("click", (event) => { event.preventDefault(); drill(row.grid_id); });
          name.appendChild(link);
        } else {
          name.textContent = row.name;
        }
        tr.appendChild(name);
        ["received", "closed", "overdue", "close_rate", "satisfaction_rate"].forEach((m) => {
          tr.appendChild(el("td", { class: "num" }, fmt(m, row[m])));
        });
        body.appendChild(tr);
      });
      if (!rows.length) {
        const tr = el("tr");
        tr.appendChild(el("td", { colspan: "6", class: "muted" }, S.noData));
        body.appendChild(tr);
      }
    });
  }

  function drawFeed(rows) {
    $$("[data-feed]").forEach((list) => {
      const limit = Number(list.dataset.limit || 0) || rows.length;
      list.replaceChildren();
      rows.slice(0, limit).forEach((row) => {
        const li = el("li", { class: row.overdue ? "late" : "" });
        li.appendChild(el("time", { datetime: row.received_at }, row.time));
        li.appendChild(el("span", { class: "feed-what" }, row.category));
        li.appendChild(el("span", { class: "feed-where" }, row.grid || "–"));
        li.appendChild(el("span", { class: "feed-status status-" + row.status }, row.status_label));
        list.appendChild(li);
      });
      if (!rows.length) list.appendChild(el("li", { class: "muted" }, S.noData));
    });
  }

  // -- charts (ECharts) ---------------------------------------------------------------------
  const charts = {};

  function chart(name) {
    const node = $(`[data-chart="${name}"]`);
    if (!node || typeof echarts === "undefined") return null;
    if (!charts[name]) charts[name] = echarts.init(node, SCREEN ? "dark" : null, { renderer: "canvas" });
    return charts[name];
  }

  function base() {
    return {
      backgroundColor: "transparent",
      color: SERIES_COLORS,
      textStyle: { color: TEXT, fontFamily: "inherit", fontSize: SCREEN ? 14 : 12 },
      animationDuration: 400,
    };
  }

  function axisLabel(row, grain) {
    if (grain === "month") return row.period.slice(0, 7);
    return row.period.slice(5);
  }

  function drawTrend(trend) {
    const c = chart("trend");
    if (!c) return;
    const x = trend.rows.map((r) => axisLabel(r, trend.grain));
    const line = (name, key, extra) => ({
      name, type: "line", smooth: 0.25, symbolSize: 5, data: trend.rows.map((r) => r[key]), ...extra,
    });
    c.setOption({
      ...base(),
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { color: TEXT } },
      grid: { left: 44, right: 16, top: 32, bottom: 28 },
      xAxis: { type: "category", data: x, axisLine: { lineStyle: { color: LINE } } },
      yAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: LINE } } },
      series: [
        line(S.received, "received", { areaStyle: { opacity: 0.12 } }),
        line(S.closed, "closed"),
        line(S.overdue, "overdue", { lineStyle: { type: "dashed" } }),
      ],
    });
  }

  function drawCategories(rows, others) {
    const c = chart("categories");
    if (!c) return;
    const shown = rows.slice().reverse();
    const names = shown.map((r) => r.name);
    const values = shown.map((r) => r.received);
    if (others) { names.unshift(S.others); values.unshift(others); }
    c.setOption({
      ...base(),
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: LINE } } },
      yAxis: { type: "category", data: names, axisLabel: { width: 110, overflow: "truncate" } },
      series: [{
        name: S.received, type: "bar", data: values, barMaxWidth: 18,
        label: { show: true, position: "right", color: TEXT },
        itemStyle: { borderRadius: [0, 3, 3, 0] },
      }],
    });
  }

  function drawChannels(rows) {
    const c = chart("channels");
    if (!c) return;
    c.setOption({
      ...base(),
      tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
      legend: { type: "scroll", orient: "vertical", right: 4, top: "middle", textStyle: { color: TEXT } },
      series: [{
        name: S.received, type: "pie", radius: ["42%", "70%"], center: ["38%", "52%"],
        label: { color: TEXT, formatter: "{b}\n{d}%" },
        data: rows.filter((r) => r.received > 0).map((r) => ({ name: r.name, value: r.received })),
      }],
    });
  }

  // -- the map: choropleth of the areas under the scope, heat of the case locations ----------
  let map = null;
  let areaLayer = null;
  let heatLayer = null;
  let labelLayer = null;
  // Names are written on the areas up to this many (a community's grids, a district's subdistricts).
  const MAX_LABELS = 40;

  function initMap() {
    const node = $("[data-map]");
    if (!node || typeof L === "undefined") return;
    map = L.map(node, { zoomSnap: 0.25, scrollWheelZoom: false, zoomControl: !SCREEN, maxZoom: 18 });
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>'
    );
    if (cfg.basemap.url) {
      L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
      if (cfg.basemap.labelsUrl) L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18 }).addTo(map);
    }
    map.setView([36.0, 103.8], 11, { animate: false });
    areaLayer = L.geoJSON(null, { style: areaStyle, onEachFeature: bindArea }).addTo(map);
    labelLayer = L.layerGroup().addTo(map);
    const overlays = { [S.areas]: areaLayer };
    if (L.heatLayer) {
      heatLayer = L.heatLayer([], { radius: SCREEN ? 26 : 20, blur: 16, maxZoom: 15, minOpacity: 0.45 }).addTo(map);
      overlays[S.heat] = heatLayer;
    }
    L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
  }

  function valuesById() {
    const out = {};
    ((state.data && state.data.areas) || []).forEach((a) => { out[a.grid_id] = a; });
    return out;
  }

  function breaks(metric) {
    if (isRate(metric)) return RATE_BREAKS;
    const values = ((state.data && state.data.areas) || []).map((a) => a[metric] || 0);
    const top = Math.max(0, ...values);
    if (!top) return [1, 1, 1, 1];
    return [0.2, 0.4, 0.6, 0.8].map((f) => Math.max(1, Math.ceil(top * f)));
  }

  function colorFor(metric, value) {
    if (value === null || value === undefined) return NO_DATA;
    const palette = PALETTES[metric];
    const b = breaks(metric);
    let i = 0;
    while (i < b.length && value >= b[i]) i += 1;
    return palette[i];
  }

  function areaStyle(feature) {
    const row = valuesById()[feature.id];
    const value = row ? row[state.metric] : null;
    return {
      color: SCREEN ? "#7dd3fc" : "#ffffff",
      weight: 1.5,
      fillColor: colorFor(state.metric, value),
      fillOpacity: 0.72,
      className: "stats-area" + (feature.properties.has_children ? " drillable" : ""),
    };
  }

  function tooltipText(feature) {
    const row = valuesById()[feature.id];
    const name = feature.properties.name;
    if (!row) return name;
    return `${name}｜${S.received} ${fmt("received", row.received)}，${S.overdue} ${fmt("overdue", row.overdue)}，`
      + `${cfg.labels.satisfaction_rate} ${fmt("satisfaction_rate", row.satisfaction_rate)}`;
  }

  function bindArea(feature, layer) {
    layer.bindTooltip(() => tooltipText(feature), { sticky: true });
    layer.on("click", () => { if (feature.properties.has_children) drill(feature.properties.id); });
    layer.on("mouseover", () => layer.setStyle({ weight: 3 }));
    layer.on("mouseout", () => layer.setStyle({ weight: 1.5 }));
  }

  function drawGeo(geo) {
    if (!map) return;
    areaLayer.clearLayers();
    labelLayer.clearLayers();
    areaLayer.addData(geo);
    if (geo.features.length <= MAX_LABELS) {
      areaLayer.eachLayer((layer) => {
        const icon = L.divIcon({ className: "stats-area-label", html: "<span></span>", iconSize: null });
        const marker = L.marker(layer.getBounds().getCenter(), { icon, interactive: false, keyboard: false });
        marker.addTo(labelLayer);
        marker.getElement().firstChild.textContent = layer.feature.properties.name;
      });
    }
    const [x0, y0, x1, y1] = geo.bbox;
    map.fitBounds([[y0, x0], [y1, x1]], { padding: [10, 10], animate: false });
    const node = $("[data-map]");
    node.dataset.areaCount = String(geo.features.length);
    node.dataset.grid = String(state.grid);
  }

  function restyle() {
    if (!areaLayer) return;
    areaLayer.setStyle(areaStyle);
    drawLegend();
  }

  function drawLegend() {
    const box = $("[data-legend]");
    if (!box) return;
    box.replaceChildren();
    const metric = state.metric;
    const palette = PALETTES[metric];
    const b = breaks(metric);
    const label = (i) => {
      const f = (v) => fmt(metric, v);
      if (i === 0) return `< ${f(b[0])}`;
      if (i === b.length) return `≥ ${f(b[b.length - 1])}`;
      return `${f(b[i - 1])} – ${f(b[i])}`;
    };
    box.appendChild(el("span", { class: "legend-title" }, cfg.labels[metric] || metric));
    palette.forEach((color, i) => {
      if (i > 0 && i < b.length && b[i] === b[i - 1]) return;
      const item = el("span", { class: "legend-item" });
      const sw = el("span", { class: "swatch" });
      sw.style.background = color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(label(i)));
      box.appendChild(item);
    });
    if (isRate(metric)) {
      const item = el("span", { class: "legend-item" });
      const sw = el("span", { class: "swatch" });
      sw.style.background = NO_DATA;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(S.noRate));
      box.appendChild(item);
    }
  }

  function drawHeat(heat) {
    if (!heatLayer) return;
    // Three quarters of the busiest cell is already "hot": a few cases still show.
    heatLayer.setOptions({ max: Math.max(1, heat.max * 0.75) });
    heatLayer.setLatLngs(heat.points);
    const node = $("[data-map]");
    node.dataset.heatPoints = String(heat.points.length);
    node.title = heat.truncated ? S.heatNote.replace("{n}", heat.limit) : "";
  }

  // -- the scope: trail, way up, links ---------------------------------------------------------
  function drawScope(scope, period) {
    $$("[data-scope-name]").forEach((n) => { n.textContent = scope.name; });
    $$("[data-child-label]").forEach((n) => { n.textContent = scope.child_label; });
    $$("[data-period-label]").forEach((n) => { n.textContent = period.label; });
    $$("[data-trail]").forEach((nav) => {
      nav.replaceChildren();
      scope.trail.forEach((g, i) => {
        if (i) nav.appendChild(el("span", { "aria-hidden": "true" }, " › "));
        if (i === scope.trail.length - 1) {
          nav.appendChild(el("span", { "aria-current": "true" }, g.name));
        } else {
          const a = el("a", { href: "?" + query({ grid: g.id }), "data-grid": String(g.id) }, g.name);
          a.addEventListener("click", (event) => { event.preventDefault(); drill(g.id); });
          nav.appendChild(a);
        }
      });
    });
    $$("[data-up]").forEach((button) => {
      button.hidden = !scope.up;
      button.onclick = () => { if (scope.up) drill(scope.up); };
    });
    $$("[data-grid-input]").forEach((input) => { input.value = String(state.grid); });
    $$("a[data-export]").forEach((a) => {
      a.href = a.pathname + "?" + query();
    });
    $$("a[data-report]").forEach((a) => {
      a.href = a.pathname + "?" + new URLSearchParams({ grid: String(state.grid), date: period.date });
    });
    $$("a[data-screen-link]").forEach((a) => { a.href = a.pathname + "?" + query(); });
  }

  // -- loading -----------------------------------------------------------------------------
  function load(newScope) {
    const seq = ++state.seq;
    if (!state.data) status(S.loading);
    const wantGeo = newScope || !state.geo;
    return Promise.all([
      getJSON(cfg.urls.data + "?" + query()),
      wantGeo ? getJSON(cfg.urls.geo + "?" + query()) : Promise.resolve(state.geo),
      getJSON(cfg.urls.heat + "?" + query()).catch(() => null),
    ]).then(([data, geo, heat]) => {
      if (seq !== state.seq) return;
      state.data = data;
      if (wantGeo) { state.geo = geo; drawGeo(geo); }
      drawScope(data.scope, data.period);
      drawKpis(data.kpis);
      drawTrend(data.trend);
      drawCategories(data.categories, data.other_categories);
      drawChannels(data.channels);
      drawLeague(data.league);
      drawAreas(data.areas);
      drawFeed(data.feed);
      restyle();
      if (heat) drawHeat(heat);
      status(S.updatedAt.replace("{t}", data.generated_at.slice(11, 19)));
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    }).catch((error) => {
      if (seq === state.seq) status(error.message || S.loadFailed, true);
    });
  }

  function drill(gridId) {
    if (gridId === state.grid) return;
    state.grid = gridId;
    history.pushState({ grid: gridId }, "", cfg.urls.page + "?" + query());
    load(true);
  }

  window.addEventListener("popstate", () => {
    const grid = Number(new URLSearchParams(location.search).get("grid")) || cfg.grid;
    if (grid !== state.grid) { state.grid = grid; load(true); }
  });

  $$('input[name="metric"]').forEach((input) => {
    input.addEventListener("change", () => { if (input.checked) { state.metric = input.value; restyle(); } });
  });

  // The period form: the anchor date for today/week/month/year, from–to for custom.
  const form = $("[data-period-form]");
  if (form) {
    const select = $("select[name=period]", form);
    const sync = () => {
      const custom = select.value === "custom";
      $(".when-custom", form).hidden = !custom;
      $(".when-anchor", form).hidden = custom;
      $$(".when-custom input", form).forEach((i) => { i.disabled = !custom; });
      $$(".when-anchor input", form).forEach((i) => { i.disabled = custom; });
    };
    select.addEventListener("change", sync);
    sync();
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      Object.values(charts).forEach((c) => c.resize());
      if (map) map.invalidateSize();
    }, 150);
  });

  if (SCREEN) {
    const clock = $("[data-clock]");
    const tick = () => {
      if (clock) {
        clock.textContent = new Date().toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
      }
    };
    tick();
    setInterval(tick, 1000);
    if (cfg.refresh > 0) setInterval(() => load(false), cfg.refresh * 1000);
  }

  initMap();
  load(true);
})();
