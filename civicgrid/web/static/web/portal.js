/* The citizen portal: category picker, map pin or phone location, photo checks.
 *
 * Configuration and translated words come from two JSON blocks the template
 * renders (#portal-config, #portal-i18n). The map shows a basemap only when one
 * is configured; otherwise it draws the jurisdiction's outline (fetched from the
 * portal's public outline endpoint) so that a pin can be placed on it. Points are
 * WGS-84 longitude/latitude, as the phone's location is. The server checks again
 * everything checked here.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const readJSON = (id) => ($(id) ? JSON.parse($(id).textContent) : {});
  const T = readJSON("portal-i18n");
  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));

  // -- the "done" page: copy the tracking code ------------------------------------
  const copy = $("copy-code");
  if (copy) {
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(copy.dataset.code);
        copy.textContent = T.copied;
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents($("tracking-code"));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    });
  }

  if (!$("portal-config")) return;
  const cfg = readJSON("portal-config");

  // -- category: search hits fill in 大类 and 小类 ------------------------------------
  const major = $("id_major");
  const minor = $("id_category");
  const hits = $("category-hits");
  const search = $("category-q");
  hits.addEventListener("click", async (event) => {
    const hit = event.target.closest(".cat-hit");
    if (!hit) return;
    const params = new URLSearchParams({ major: hit.dataset.major, selected: hit.dataset.category });
    const response = await fetch(`${cfg.minors}?${params}`, { headers: { "HX-Request": "true" } });
    if (!response.ok) return;
    major.value = hit.dataset.major;
    minor.innerHTML = await response.text();
    minor.value = hit.dataset.category;
    hits.replaceChildren();
    search.value = "";
    minor.focus();
  });
  // Enter in the search box picks the first hit instead of sending the form.
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const first = hits.querySelector(".cat-hit");
    if (first) first.click();
  });

  // -- the map ---------------------------------------------------------------------
  const lonInput = $("id_lon");
  const latInput = $("id_lat");
  const pinStatus = $("pin-status");
  const clearButton = $("clear-pin");
  const locateButton = $("use-location");
  const hasBasemap = Boolean(cfg.basemap.url);

  const map = L.map("report-map", { zoomSnap: 0.5, minZoom: 3, maxZoom: hasBasemap ? 18 : 19 });
  map.attributionControl.setPrefix(false);
  if (hasBasemap) {
    L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
    if (cfg.basemap.labelsUrl) L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18, zIndex: 2 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
  map.on("movestart zoomstart", () => map.getContainer().setAttribute("data-moving", ""));
  map.on("moveend", () => map.getContainer().removeAttribute("data-moving"));

  const STYLES = {
    0: { color: "#0b3a75", weight: 2.5, fillColor: "#ffffff", fillOpacity: hasBasemap ? 0.04 : 0.92 },
    1: { color: "#c2410c", weight: 1.5, dashArray: "5 4", fill: false },
  };
  let districts = []; // level-0 geometries, for the inside check
  const outline = L.geoJSON(null, {
    interactive: false,
    style: (f) => ({ ...STYLES[f.properties.level], className: `portal-outline-${f.properties.level}` }),
    onEachFeature: (f, layer) => {
      if (f.properties.level === 1) {
        layer.bindTooltip(f.properties.name, {
          permanent: true,
          direction: "center",
          className: "outline-label",
          interactive: false,
        });
      }
    },
  }).addTo(map);

  function ringContains(ring, x, y) {
    let inside = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }
  function polygonContains(rings, x, y) {
    return ringContains(rings[0], x, y) && !rings.slice(1).some((hole) => ringContains(hole, x, y));
  }
  /** Inside the jurisdiction: true, false, or null while the outline is unknown. */
  function insideJurisdiction(lon, lat) {
    if (!districts.length) return null;
    return districts.some((g) =>
      g.type === "Polygon"
        ? polygonContains(g.coordinates, lon, lat)
        : g.type === "MultiPolygon" && g.coordinates.some((p) => polygonContains(p, lon, lat))
    );
  }

  function say(text, warn) {
    pinStatus.textContent = text;
    pinStatus.classList.toggle("warn", Boolean(warn));
  }

  const pinIcon = (outside) =>
    L.divIcon({ className: `portal-pin${outside ? " outside" : ""}`, html: "<span></span>", iconSize: [30, 30], iconAnchor: [15, 36] });
  let marker = null;
  function place(latlng) {
    const lon = latlng.lng;
    const lat = latlng.lat;
    lonInput.value = lon.toFixed(6);
    latInput.value = lat.toFixed(6);
    const inside = insideJurisdiction(lon, lat);
    if (!marker) {
      marker = L.marker(latlng, { draggable: true, keyboard: false, icon: pinIcon(inside === false) }).addTo(map);
      marker.on("dragend", () => place(marker.getLatLng()));
    } else {
      marker.setLatLng(latlng);
      marker.setIcon(pinIcon(inside === false));
    }
    if (inside === false) say(T.outside, true);
    else say(fmt(T.pinned, { lon: lon.toFixed(6), lat: lat.toFixed(6) }), false);
    clearButton.hidden = false;
  }
  function clearPin() {
    if (marker) marker.remove();
    marker = null;
    lonInput.value = "";
    latInput.value = "";
    say(T.tapHint, false);
    clearButton.hidden = true;
  }
  /** Bring a point into view: close up over a basemap; without one, closer views
   * show only a blank sheet, so the whole outline stays in view. */
  function focus(latlng, zoom) {
    if (hasBasemap) map.setView(latlng, Math.max(map.getZoom() || 0, zoom));
    else if (!map.getBounds().contains(latlng)) map.panTo(latlng);
  }
  function restorePin() {
    const lon = parseFloat(lonInput.value);
    const lat = parseFloat(latInput.value);
    if (Number.isFinite(lon) && Number.isFinite(lat)) {
      place(L.latLng(lat, lon));
      focus(L.latLng(lat, lon), 15);
    }
  }

  map.on("click", (e) => place(e.latlng));
  clearButton.addEventListener("click", clearPin);
  locateButton.addEventListener("click", () => {
    if (!navigator.geolocation) {
      say(T.noGeolocation, true);
      return;
    }
    say(T.locating, false);
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const latlng = L.latLng(position.coords.latitude, position.coords.longitude);
        place(latlng);
        focus(latlng, 16);
      },
      () => say(T.noGeolocation, true),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  });

  say(T.tapHint, false);
  fetch(cfg.outline, { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    })
    .then((fc) => {
      outline.addData(fc);
      districts = fc.features.filter((f) => f.properties.level === 0).map((f) => f.geometry);
      const bounds = outline.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [8, 8] });
      else map.setView([35, 105], 4);
      map.getContainer().setAttribute("data-ready", "");
      restorePin();
    })
    .catch(() => {
      map.setView([35, 105], 4);
      say(T.outlineFailed, true);
      map.getContainer().setAttribute("data-ready", "");
      restorePin();
    });

  // -- photos: previews and the checks a phone can make before sending ------------------
  const photos = $("id_photos");
  const previews = $("photo-previews");
  const problem = $("photo-problem");
  const photoCount = $("photo-count");
  let previewUrls = [];
  photos.addEventListener("change", () => {
    previewUrls.forEach((url) => URL.revokeObjectURL(url));
    previewUrls = [];
    previews.replaceChildren();
    const problems = [];
    const files = Array.from(photos.files);
    if (files.length > cfg.maxPhotos) problems.push(fmt(T.tooMany, { max: cfg.maxPhotos, n: files.length }));
    files.forEach((file) => {
      if (file.type && !file.type.startsWith("image/")) {
        problems.push(fmt(T.notImage, { name: file.name }));
      } else if (file.size > cfg.maxBytes) {
        problems.push(fmt(T.tooBig, { name: file.name, size: Math.floor(cfg.maxBytes / 1048576) }));
      } else {
        const url = URL.createObjectURL(file);
        previewUrls.push(url);
        const img = document.createElement("img");
        img.src = url;
        img.alt = file.name;
        previews.append(img);
      }
    });
    photoCount.textContent = files.length ? fmt(T.chosen, { n: files.length }) : "";
    problem.textContent = problems.join(" ");
    problem.hidden = problems.length === 0;
    photos.setCustomValidity(problems.length ? problems[0] : "");
  });

  // One report per tap: the button waits while the form is sent.
  const form = $("report-form");
  const submit = $("submit-report");
  form.addEventListener("submit", () => {
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
  });
  window.addEventListener("pageshow", () => {
    submit.disabled = false;
    submit.removeAttribute("aria-busy");
  });
})();
