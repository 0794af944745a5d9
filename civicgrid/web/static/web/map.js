/* The grid map: the grid tree the user may see, search, grid details, point locating.
 *
 * Configuration and translated words come from two JSON blocks the template
 * renders (#map-config, #map-i18n). Levels 0-2 are fetched at once; level-3
 * grids are fetched per subdistrict as the map reaches them. Without a
 * configured basemap no tile layer is made, so nothing is fetched from outside.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const T = JSON.parse(document.getElementById("map-i18n").textContent);
  const $ = (id) => document.getElementById(id);
  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  const MAX_RESULTS = 50;

  const STYLES = {
    0: { color: "#0b3a75", weight: 3.5, fillColor: "#0b3a75", fillOpacity: 0 },
    1: { color: "#c2410c", weight: 2.5, fillColor: "#fb923c", fillOpacity: 0.05 },
    2: { color: "#047857", weight: 1.5, fillColor: "#34d399", fillOpacity: 0.05, dashArray: "6 4" },
    3: { color: "#7c3aed", weight: 1, fillColor: "#a78bfa", fillOpacity: 0.07 },
  };
  const HIGHLIGHT = { color: "#e0312b", weight: 3.5, fillColor: "#facc15", fillOpacity: 0.25 };
  if (!cfg.basemap.url) {
    // No basemap: the jurisdiction is a sheet of paper on a grey table.
    Object.assign(STYLES[0], { fillColor: "#ffffff", fillOpacity: 0.92 });
  }

  // -- helpers ---------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    });
    children.flat(Infinity).forEach((c) => {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    });
    return node;
  }

  async function getJSON(url, params) {
    const query = params ? "?" + new URLSearchParams(params) : "";
    const response = await fetch(url + query, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const error = new Error((body && body.detail) || String(response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function failureText(error) {
    if (error.status === 401 || error.status === 403) return T.sessionExpired;
    if (error.status === 404) return T.notVisible;
    if (error.status === 400 || error.status === 422) return error.message;
    return T.loadFailed;
  }

  function formatArea(m2) {
    const km2 = m2 / 1e6;
    const km2Text = km2 >= 10 ? km2.toFixed(1) : km2 >= 0.01 ? km2.toFixed(2) : km2.toFixed(4);
    const m2Text = Math.round(m2).toLocaleString(document.documentElement.lang || undefined);
    return fmt(T.areaFormat, { km2: km2Text, m2: m2Text });
  }

  function bboxBounds(b) {
    return L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
  }

  function debounce(fn, ms) {
    let timer = null;
    const call = (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
    call.cancel = () => clearTimeout(timer);
    return call;
  }

  // -- the map -----------------------------------------------------------------
  const map = L.map("map", {
    zoomControl: true,
    minZoom: 3,
    maxZoom: cfg.basemap.url ? 18 : 19,
    zoomSnap: 0.5,
    preferCanvas: false,
  });
  map.attributionControl.setPrefix(
    '<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>'
  );
  if (cfg.basemap.url) {
    L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
    if (cfg.basemap.labelsUrl) {
      L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18, zIndex: 2 }).addTo(map);
    }
  }
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
  // "Still moving" for whoever needs to wait for the map to settle (the browser tests).
  map.on("movestart zoomstart", () => map.getContainer().setAttribute("data-moving", ""));
  map.on("moveend", () => map.getContainer().removeAttribute("data-moving"));

  // Each level is drawn twice: its areas, which take the clicks, stacked grids
  // over communities over subdistricts; and its outlines, in a pane above, stacked
  // the other way round, so a subdistrict's boundary stays visible over the grids
  // along it. Two panes (two SVGs) keep the page light; restack() keeps the order
  // within each as data arrives and levels are toggled. The highlight sits above
  // all and takes no clicks.
  map.createPane("areas").style.zIndex = "401";
  map.createPane("outlines").style.zIndex = "420";
  map.getPane("outlines").style.pointerEvents = "none";
  map.createPane("highlight").style.zIndex = "450";
  map.getPane("highlight").style.pointerEvents = "none";

  let picking = false;
  const areas = {};
  const outlines = {};
  const layers = {};
  [0, 1, 2, 3].forEach((level) => {
    const s = STYLES[level];
    const areaStyle = { stroke: false, fillColor: s.fillColor, fillOpacity: s.fillOpacity };
    const hover = { fillOpacity: level === 0 ? s.fillOpacity : 0.2 };
    areas[level] = L.geoJSON(null, {
      pane: "areas",
      // The class names let tests and stylesheets find a grid's area.
      style: (feature) => ({
        ...areaStyle,
        className: `grid-level-${level} grid-code-${feature.properties.code}`,
      }),
      onEachFeature: (feature, layer) => {
        const p = feature.properties;
        const tip = () => el("span", null, p.name, el("br"), el("span", { class: "tip-code", text: p.code }));
        layer.bindTooltip(tip, { sticky: true, direction: "top", className: "grid-tip" });
        layer.on("mouseover", () => layer.setStyle(hover));
        layer.on("mouseout", () => layer.setStyle(areaStyle));
        layer.on("click", () => {
          if (!picking) selectGrid(p.id, { fly: false });
        });
      },
    });
    outlines[level] = L.geoJSON(null, {
      pane: "outlines",
      interactive: false,
      style: () => ({
        color: s.color,
        weight: s.weight,
        opacity: 1,
        fill: false,
        dashArray: s.dashArray,
        className: `grid-outline-${level}`,
      }),
    });
    layers[level] = L.layerGroup([areas[level], outlines[level]]);
    layers[level].on("add", () => restack());
  });
  function restack() {
    [0, 1, 2, 3].forEach((level) => areas[level].bringToFront());
    [3, 2, 1, 0].forEach((level) => outlines[level].bringToFront());
  }
  function addFeatures(level, fc) {
    areas[level].addData(fc);
    outlines[level].addData(fc);
    restack();
  }
  const highlight = L.geoJSON(null, { pane: "highlight", interactive: false, style: () => HIGHLIGHT });
  highlight.addTo(map);
  const pointLayer = L.layerGroup().addTo(map);

  const swatch = (level) =>
    `<span class="swatch" style="border-color:${STYLES[level].color};background:${STYLES[level].fillColor}33"></span>`;
  const overlays = {};
  [0, 1, 2, 3].forEach((level) => {
    // Names are the translated level labels; escape them as Leaflet inserts HTML.
    const label = el("span", { text: cfg.levels[level] }).innerHTML;
    overlays[`${swatch(level)}${label}`] = layers[level];
  });
  // Back to the whole of the user's scope.
  const Home = L.Control.extend({
    onAdd() {
      const bar = L.DomUtil.create("div", "leaflet-bar");
      const a = L.DomUtil.create("a", "map-home", bar);
      a.href = "#";
      a.role = "button";
      a.title = T.fullExtent;
      a.setAttribute("aria-label", T.fullExtent);
      a.textContent = "⌂";
      L.DomEvent.disableClickPropagation(bar);
      L.DomEvent.on(a, "click", (e) => {
        L.DomEvent.preventDefault(e);
        fitScope();
      });
      return bar;
    },
  });
  new Home({ position: "topleft" }).addTo(map);
  const layerControl = L.control.layers(null, overlays, { collapsed: false, position: "topleft" }).addTo(map);
  [0, 1, 2].forEach((level) => layers[level].addTo(map));

  // A small status box: loading, errors, and the "zoom in for grids" hint.
  const Status = L.Control.extend({
    onAdd() {
      this._div = L.DomUtil.create("div", "map-status");
      this._div.setAttribute("aria-live", "polite");
      this._div.id = "map-status";
      return this._div;
    },
  });
  const status = new Status({ position: "bottomright" }).addTo(map);
  let pending = 0;
  let lastError = "";
  function updateStatus() {
    let text = "";
    if (pending > 0) text = T.loading;
    else if (lastError) text = lastError;
    else if (!cfg.roots.length) text = T.noScope;
    else if (!map.hasLayer(layers[3]) && map.getZoom() < cfg.gridMinZoom) text = T.zoomForGrids;
    status._div.textContent = text;
    status._div.hidden = !text;
    status._div.classList.toggle("error", !pending && Boolean(lastError));
  }

  async function track(promise) {
    pending += 1;
    updateStatus();
    try {
      return await promise;
    } finally {
      pending -= 1;
      updateStatus();
    }
  }

  // Mouse position (storage lon/lat, i.e. WGS-84/CGCS2000).
  const Coords = L.Control.extend({
    onAdd() {
      const div = L.DomUtil.create("div", "map-coords");
      map.on("mousemove", (e) => {
        div.textContent = `${T.lon} ${e.latlng.lng.toFixed(6)}  ${T.lat} ${e.latlng.lat.toFixed(6)}`;
      });
      map.getContainer().addEventListener("mouseleave", () => {
        div.textContent = "";
      });
      return div;
    },
  });
  new Coords({ position: "bottomleft" }).addTo(map);

  // -- loading the tree --------------------------------------------------------
  function loadUpperLevels() {
    if (!cfg.roots.length) return;
    [0, 1, 2].forEach((level) => {
      track(getJSON(cfg.api.geojson, { level }))
        .then((fc) => {
          addFeatures(level, fc);
          queueLabels();
        })
        .catch((e) => {
          lastError = failureText(e);
          updateStatus();
        });
    });
  }

  const chunkState = {};
  function loadGridsInView() {
    if (!map.hasLayer(layers[3])) return;
    const view = map.getBounds().pad(0.25);
    cfg.chunks.forEach((chunk) => {
      if (chunkState[chunk.id] || !view.intersects(bboxBounds(chunk.bbox))) return;
      chunkState[chunk.id] = "loading";
      track(getJSON(cfg.api.geojson, { level: 3, within: chunk.id }))
        .then((fc) => {
          addFeatures(3, fc);
          chunkState[chunk.id] = "done";
          queueLabels();
        })
        .catch((e) => {
          delete chunkState[chunk.id];
          lastError = failureText(e);
          updateStatus();
        });
    });
  }

  // Grids come on when the map is zoomed in past gridMinZoom and go off when it
  // is zoomed out past it; in between, the layer control decides.
  let zoomedIn = null;
  function applyZoomRule() {
    const now = map.getZoom() >= cfg.gridMinZoom;
    if (now !== zoomedIn) {
      zoomedIn = now;
      if (now) map.addLayer(layers[3]);
      else map.removeLayer(layers[3]);
    }
    updateStatus();
  }
  map.on("zoomend", applyZoomRule);
  map.on("moveend", loadGridsInView);
  map.on("overlayadd overlayremove", () => {
    loadGridsInView();
    updateStatus();
  });

  // -- labels ------------------------------------------------------------------
  // Names of the finest level shown, on polygons wide enough on screen to hold one.
  const labels = L.layerGroup().addTo(map);
  const LABEL_MIN_PX = 72;
  const MAX_LABELS = 150;
  function updateLabels() {
    labels.clearLayers();
    const level = [3, 2, 1, 0].find((l) => map.hasLayer(layers[l]) && areas[l].getLayers().length);
    if (level === undefined) return;
    const view = map.getBounds();
    let count = 0;
    areas[level].eachLayer((layer) => {
      if (count >= MAX_LABELS) return;
      const p = layer.feature.properties;
      const bounds = layer.getBounds();
      if (!view.intersects(bounds)) return;
      const width = map.latLngToContainerPoint(bounds.getNorthEast()).x - map.latLngToContainerPoint(bounds.getSouthWest()).x;
      if (width < LABEL_MIN_PX) return;
      const where = p.centroid ? [p.centroid[1], p.centroid[0]] : bounds.getCenter();
      L.tooltip({ permanent: true, direction: "center", className: `grid-label grid-label-${level}`, interactive: false })
        .setLatLng(where)
        .setContent(el("span", { text: p.name }))
        .addTo(labels);
      count += 1;
    });
  }
  const queueLabels = debounce(updateLabels, 50);
  map.on("moveend zoomend overlayadd overlayremove", queueLabels);
  [0, 1, 2, 3].forEach((level) => layers[level].on("add remove", queueLabels));

  // -- grid details ------------------------------------------------------------
  const panel = $("grid-panel");
  const panelBody = $("grid-panel-body");
  let selectSeq = 0;

  function closePanel() {
    panel.hidden = true;
    panelBody.replaceChildren();
    highlight.clearLayers();
  }
  $("grid-panel-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      if (picking) setPicking(false);
      else if (!panel.hidden) closePanel();
    }
  });

  function fitPadding() {
    // Clear of the controls on the left and of the details panel on the right.
    const left = layerControl.getContainer().offsetWidth + 30;
    return { paddingTopLeft: [left, 40], paddingBottomRight: [panel.hidden ? 40 : 380, 40] };
  }

  async function selectGrid(id, { fly }) {
    const seq = ++selectSeq;
    panel.hidden = false;
    panelBody.replaceChildren(el("p", { class: "muted", text: T.loading }));
    let grid;
    try {
      grid = await track(getJSON(cfg.api.detail + id));
    } catch (e) {
      if (seq === selectSeq) panelBody.replaceChildren(el("p", { class: "error", text: failureText(e) }));
      return;
    }
    if (seq !== selectSeq) return;
    highlight.clearLayers();
    highlight.addData({ type: "Feature", geometry: grid.geometry, properties: {} });
    renderPanel(grid);
    if (fly) {
      // Some of the surroundings stay in view.
      map.flyToBounds(highlight.getBounds().pad(0.3), { ...fitPadding(), maxZoom: 17, duration: 0.6 });
    }
  }

  function renderPanel(grid) {
    const crumbs = el("ol", { class: "crumbs", "aria-label": T.path });
    grid.path.forEach((ref, i) => {
      const last = i === grid.path.length - 1;
      crumbs.append(
        el(
          "li",
          null,
          last
            ? el("span", { text: ref.name })
            : el("button", { type: "button", class: "link", text: ref.name, onclick: () => selectGrid(ref.id, { fly: true }) })
        )
      );
    });
    const rows = [
      [T.code, el("span", { class: "code", text: grid.code })],
      [T.kind, cfg.kinds[grid.kind] || grid.kind],
      [T.area, formatArea(grid.area_m2)],
    ];
    if (grid.level < 3) rows.push([T.children, String(grid.children)]);
    const table = el(
      "dl",
      { class: "facts" },
      rows.map(([k, v]) => [el("dt", { text: k }), el("dd", null, v)])
    );
    const parts = [
      el("p", { class: "panel-kicker", text: cfg.levels[grid.level] || "" }),
      el("h2", { id: "grid-panel-title", text: grid.name }),
      crumbs,
      table,
    ];
    if (grid.level === 3 || grid.workers.length) {
      const list = grid.workers.length
        ? el(
            "ul",
            { class: "workers" },
            grid.workers.map((w) =>
              el(
                "li",
                null,
                el("span", { class: "worker-name", text: w.name }),
                w.phone ? el("a", { class: "worker-phone", href: `tel:${w.phone}`, text: w.phone }) : null
              )
            )
          )
        : el("p", { class: "muted", text: T.noWorkers });
      parts.push(el("h3", { text: T.workers }), list);
    }
    panelBody.replaceChildren(...parts);
  }

  // -- search ------------------------------------------------------------------
  const searchInput = $("grid-q");
  const searchStatus = $("search-status");
  const searchResults = $("search-results");
  let searchSeq = 0;
  let lastRows = [];
  let latestSearch = Promise.resolve([]);

  // The rows of the latest search: a search overtaken by a newer one (typing, then
  // Enter at once) answers with the newer one's rows, not the previous query's.
  function runSearch() {
    latestSearch = search();
    return latestSearch;
  }

  async function search() {
    const q = searchInput.value.trim();
    const seq = ++searchSeq;
    if (!q) {
      searchStatus.textContent = "";
      searchResults.replaceChildren();
      lastRows = [];
      return lastRows;
    }
    searchStatus.textContent = T.searching;
    let rows;
    try {
      rows = await getJSON(cfg.api.grids, { q });
    } catch (e) {
      if (seq !== searchSeq) return latestSearch;
      searchStatus.textContent = failureText(e);
      return [];
    }
    if (seq !== searchSeq) return latestSearch;
    lastRows = rows;
    searchStatus.textContent = rows.length
      ? fmt(T.resultCount, { n: rows.length }) +
        (rows.length > MAX_RESULTS ? " " + fmt(T.resultsTruncated, { n: MAX_RESULTS }) : "")
      : T.noResults;
    searchResults.replaceChildren(
      ...rows.slice(0, MAX_RESULTS).map((row) =>
        el(
          "li",
          null,
          el(
            "button",
            { type: "button", class: "result", "data-grid-id": String(row.id), onclick: () => selectGrid(row.id, { fly: true }) },
            el("span", { class: "result-name", text: row.name }),
            el("span", { class: `level-badge level-${row.level}`, text: cfg.levels[row.level] || "" }),
            el("span", { class: "code", text: row.code })
          )
        )
      )
    );
    return rows;
  }

  const searchWhileTyping = debounce(runSearch, 300);
  searchInput.addEventListener("input", searchWhileTyping);
  $("grid-search").addEventListener("submit", async (e) => {
    e.preventDefault();
    searchWhileTyping.cancel();
    const rows = await runSearch();
    const q = searchInput.value.trim();
    const exact = rows.find((r) => r.code === q || r.name === q);
    if (exact || rows.length === 1) selectGrid((exact || rows[0]).id, { fly: true });
  });

  // -- locating a point ----------------------------------------------------------
  const locateResult = $("locate-result");
  const pickButton = $("locate-pick");

  function setPicking(on) {
    picking = on;
    map.getContainer().classList.toggle("picking", on);
    pickButton.setAttribute("aria-pressed", on ? "true" : "false");
    pickButton.textContent = on ? T.pickCancel : T.pickStart;
    if (on) locateResult.replaceChildren(el("p", { class: "muted", text: T.pickHint }));
  }
  pickButton.addEventListener("click", () => setPicking(!picking));

  map.on("click", (e) => {
    if (!picking) return;
    setPicking(false);
    $("locate-lon").value = e.latlng.lng.toFixed(6);
    $("locate-lat").value = e.latlng.lat.toFixed(6);
    $("locate-crs").value = "wgs84";
    locate();
  });

  async function locate() {
    const lon = Number.parseFloat($("locate-lon").value);
    const lat = Number.parseFloat($("locate-lat").value);
    if (!Number.isFinite(lon) || !Number.isFinite(lat)) {
      locateResult.replaceChildren(el("p", { class: "error", text: T.invalidPoint }));
      return;
    }
    let result;
    try {
      result = await track(getJSON(cfg.api.locate, { lon, lat, crs: $("locate-crs").value }));
    } catch (e) {
      locateResult.replaceChildren(el("p", { class: "error", text: failureText(e) }));
      return;
    }
    pointLayer.clearLayers();
    const where = [result.lat, result.lon];
    L.circleMarker(where, {
      radius: 7,
      color: "#fff",
      weight: 2,
      fillColor: result.inside ? "#e0312b" : "#64748b",
      fillOpacity: 1,
      pane: "highlight",
      interactive: false,
    }).addTo(pointLayer);
    const coords = el("p", {
      class: "muted small",
      text: fmt(T.pointCoords, { lon: result.lon.toFixed(6), lat: result.lat.toFixed(6) }),
    });
    if (!result.inside) {
      locateResult.replaceChildren(el("p", { class: "outside", text: T.outside }), coords);
      // Show where the point lies relative to the jurisdiction.
      if (!map.getBounds().contains(where)) {
        const bounds = scopeBounds();
        map.fitBounds(bounds ? bounds.extend(where) : L.latLngBounds([where, where]), {
          ...fitPadding(),
          maxZoom: 15,
        });
      }
      return;
    }
    const path = el("ol", { class: "crumbs", "aria-label": T.path }, result.path.map((ref) => el("li", { text: ref.name })));
    locateResult.replaceChildren(
      el("p", { class: "small muted", text: T.locatedIn }),
      path,
      el("p", null, el("span", { class: "code", text: result.grid.code })),
      coords,
      el("button", { type: "button", class: "secondary", text: T.viewGrid, onclick: () => selectGrid(result.grid.id, { fly: true }) })
    );
    if (!map.getBounds().contains(where)) map.panTo(where);
  }

  $("locate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setPicking(false);
    locate();
  });

  // -- start -------------------------------------------------------------------
  function scopeBounds() {
    if (!cfg.roots.length) return null;
    return cfg.roots.map((r) => bboxBounds(r.bbox)).reduce((a, b) => a.extend(b));
  }

  function fitScope() {
    const bounds = scopeBounds();
    if (bounds) {
      map.fitBounds(bounds, { ...fitPadding(), paddingBottomRight: [20, 20] });
    } else {
      map.setView([35.0, 105.0], 4);
    }
  }
  fitScope();
  applyZoomRule();
  loadUpperLevels();
  loadGridsInView();
  updateStatus();
})();
