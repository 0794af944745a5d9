/* The overview's map: the open cases as points coloured by status (red ring: past
 * the deadline), inside the outline of the chosen area. The body is swapped by htmx
 * when the filters change, so the map is (re)drawn through htmx.onLoad. Without a
 * configured basemap no tile layer is made, so nothing is fetched from outside. */
(function () {
  "use strict";

  const COLORS = {
    new: "#1d4ed8", filed: "#1d4ed8", dispatched: "#6d28d9", in_progress: "#6d28d9",
    returned: "#b54708", handled: "#0e7490", parked: "#667085",
  };
  const AREA_STYLE = { color: "#0b3a75", weight: 2, fillColor: "#ffffff", fillOpacity: 0.85 };
  const PART_STYLE = { color: "#7b8794", weight: 1, dashArray: "4 3", fill: false };

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null));
  }

  function escape(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  function draw(el) {
    if (el.hasAttribute("data-ready") || typeof L === "undefined") return;
    el.setAttribute("data-ready", "");
    const cfg = JSON.parse(document.getElementById(el.dataset.config).textContent);
    const map = L.map(el, { scrollWheelZoom: false, maxZoom: 18, zoomSnap: 0.25 });
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>'
    );
    if (cfg.basemap.url) {
      L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
      if (cfg.basemap.labelsUrl) L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18 }).addTo(map);
    }
    const points = L.featureGroup().addTo(map);
    cfg.points.forEach((p) => {
      const marker = L.circleMarker([p.lat, p.lon], {
        radius: 6,
        weight: p.late ? 3 : 1.5,
        color: p.late ? "#e0312b" : "#ffffff",
        fillColor: COLORS[p.s] || "#64748b",
        fillOpacity: 0.95,
        className: "case-point" + (p.late ? " late" : ""),
      });
      marker.bindPopup(
        `<a href="${p.url}">${escape(p.n)}</a><br>${escape(p.c)} · ${escape(cfg.statusLabels[p.s] || p.s)}`
      );
      marker.addTo(points);
    });
    if (cfg.area) {
      const [x0, y0, x1, y1] = cfg.area;
      map.fitBounds([[y0, x0], [y1, x1]], { padding: [8, 8], animate: false });
    } else if (cfg.points.length) {
      map.fitBounds(points.getBounds(), { padding: [20, 20], maxZoom: 16, animate: false });
    } else {
      map.setView([36.0, 103.8], 11, { animate: false });
    }
    el.setAttribute("data-points", String(cfg.points.length));
    if (!cfg.gridUrl) return;
    Promise.all([getJSON(cfg.gridUrl), cfg.partsUrl ? getJSON(cfg.partsUrl) : null])
      .then(([grid, parts]) => {
        if (!grid) return;
        const style = cfg.basemap.url ? { ...AREA_STYLE, fillOpacity: 0.05 } : AREA_STYLE;
        L.geoJSON(grid.geometry, { style: { ...style, className: "overview-area" }, interactive: false })
          .addTo(map);
        if (parts && parts.features) {
          L.geoJSON(parts, {
            style: { ...PART_STYLE, className: "overview-part" },
            interactive: false,
            onEachFeature: (feature, layer) => {
              layer.bindTooltip(feature.properties.name, {
                permanent: true, direction: "center", className: "overview-part-label",
              });
            },
          }).addTo(map);
        }
        points.bringToFront();
      })
      .catch(() => {});
  }

  htmx.onLoad((root) => {
    const maps = root.matches && root.matches(".overview-map")
      ? [root]
      : root.querySelectorAll(".overview-map");
    maps.forEach(draw);
  });
})();
