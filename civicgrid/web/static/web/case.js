/* The case page: the case's point and grid on a small map, and photos enlarged.
 *
 * The page's content is swapped whole by htmx after every action, so everything is
 * (re)attached through htmx.onLoad. The map config comes from the JSON block the
 * template renders (#case-map-config); without a configured basemap no tile layer
 * is made, so nothing is fetched from outside.
 */
(function () {
  "use strict";

  const GRID_STYLE = { color: "#7c3aed", weight: 2, fillColor: "#a78bfa", fillOpacity: 0.12 };

  function drawMap(el) {
    if (el.hasAttribute("data-ready") || typeof L === "undefined") return;
    el.setAttribute("data-ready", "");
    const cfg = JSON.parse(document.getElementById(el.dataset.config).textContent);
    const point = [cfg.lat, cfg.lon];
    const map = L.map(el, { scrollWheelZoom: false, maxZoom: cfg.basemap.url ? 18 : 19 });
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>'
    );
    if (cfg.basemap.url) {
      L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
      if (cfg.basemap.labelsUrl) L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18 }).addTo(map);
    }
    const marker = L.circleMarker(point, {
      radius: 7, color: "#e0312b", weight: 3, fillColor: "#fff", fillOpacity: 1, className: "case-point",
    }).addTo(map);
    map.setView(point, 16, { animate: false });
    if (!cfg.gridUrl) return;
    fetch(cfg.gridUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((grid) => {
        if (!grid) return; // a grid outside the user's map scope: the point alone
        const layer = L.geoJSON(grid.geometry, { style: { ...GRID_STYLE, className: "case-grid" } });
        layer.addTo(map);
        marker.bringToFront();
        map.fitBounds(layer.getBounds(), { padding: [12, 12], maxZoom: 17, animate: false });
        el.setAttribute("data-grid", grid.code);
      })
      .catch(() => {});
  }

  function openPhoto(event) {
    const link = event.target.closest("a.photo");
    if (!link) return;
    const dialog = document.querySelector(".case-page dialog.lightbox");
    if (!dialog || typeof dialog.showModal !== "function") return; // the link opens it instead
    event.preventDefault();
    dialog.querySelector("img").src = link.href;
    dialog.showModal();
  }

  function closePhoto(event) {
    const dialog = event.target.closest("dialog.lightbox");
    if (dialog && (event.target === dialog || event.target.closest(".lightbox-close"))) {
      dialog.close();
    }
  }

  document.addEventListener("click", (event) => {
    openPhoto(event);
    closePhoto(event);
  });
  htmx.onLoad((root) => {
    const maps = root.matches && root.matches(".case-map") ? [root] : root.querySelectorAll(".case-map");
    maps.forEach(drawMap);
  });
})();
