/* The call-taker's intake page: keyboard shortcuts, the category and place pickers,
 * the map, and the live grid path and duplicates.
 *
 * Configuration and translated words come from two JSON blocks the template renders
 * (#intake-config, #intake-i18n). The server checks again everything picked here;
 * without this script the form still works (type the category code, coordinates).
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("intake-config").textContent);
  const T = JSON.parse($("intake-i18n").textContent);
  const form = $("intake-form");
  const lonInput = $("id_lon");
  const latInput = $("id_lat");
  const crsSelect = $("id_crs");
  const categoryInput = $("id_category_q");
  const categoryCode = $("id_category");
  const chosen = $("category-chosen");
  const addressInput = $("id_address");

  // -- keyboard shortcuts (listed on the page) --------------------------------------------
  const FOCUS = {
    KeyM: "id_description",
    KeyL: "id_category_q",
    KeyW: "id_address",
    KeyG: "id_lon",
    KeyR: "id_requester_name",
    KeyX: "id_reject_reason",
  };
  const DECIDE = { KeyA: "accept", KeyZ: "save" };

  function submitWith(decision) {
    const button = form.querySelector(`.decision-bar button[value="${decision}"]`);
    if (typeof form.requestSubmit === "function") form.requestSubmit(button);
    else button.click();
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey && !event.ctrlKey && !event.metaKey) {
      if (FOCUS[event.code]) {
        event.preventDefault();
        $(FOCUS[event.code]).focus();
      } else if (DECIDE[event.code]) {
        event.preventDefault();
        submitWith(DECIDE[event.code]);
      }
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form.contains(event.target)) {
      event.preventDefault();
      submitWith("accept");
    }
  });

  // -- a list under an input: arrow keys move, Enter or a click picks, Escape closes --------
  function combo(input, box, onPick, { enterWithoutPick }) {
    let pickOnArrival = false;
    let pending = false;
    const options = () => Array.from(box.querySelectorAll('[role="option"]'));
    const active = () => box.querySelector('[role="option"].active');
    function setActive(option) {
      options().forEach((o) => {
        o.classList.toggle("active", o === option);
        o.setAttribute("aria-selected", o === option ? "true" : "false");
      });
      if (option) {
        input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    }
    function close() {
      box.replaceChildren();
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    function pick(option) {
      pickOnArrival = false;
      close();
      onPick(option);
    }
    input.addEventListener("input", () => {
      pending = input.value.trim() !== "";
      if (!pending) close();
    });
    input.addEventListener("keydown", (event) => {
      const list = options();
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!list.length) return;
        event.preventDefault();
        const i = list.indexOf(active());
        setActive(list[event.key === "ArrowDown" ? Math.min(i + 1, list.length - 1) : Math.max(i - 1, 0)]);
      } else if (event.key === "Enter" && !event.ctrlKey && !event.altKey && !event.metaKey) {
        if (list.length) {
          event.preventDefault();
          pick(active() || list[0]);
        } else if (pending) {
          // Typed faster than the list came: pick its first line when it arrives.
          event.preventDefault();
          pickOnArrival = true;
        } else if (!enterWithoutPick()) {
          event.preventDefault();
        }
      } else if (event.key === "Escape" && box.childElementCount) {
        event.preventDefault();
        close();
      }
    });
    box.addEventListener("mousedown", (event) => event.preventDefault()); // the input keeps the focus
    box.addEventListener("click", (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) pick(option);
    });
    input.addEventListener("blur", () => setTimeout(() => {
      if (document.activeElement !== input) close();
    }, 150));
    box.addEventListener("htmx:afterSwap", () => {
      pending = false;
      const list = options();
      input.setAttribute("aria-expanded", list.length ? "true" : "false");
      if (pickOnArrival && list.length) {
        pick(list[0]);
        return;
      }
      pickOnArrival = false;
      if (document.activeElement !== input) close();
      else if (list.length) setActive(list[0]);
    });
  }

  // Set once the error display is wired up (below).
  let correctedCategory = () => {};
  let correctedPlace = () => {};

  // -- category ------------------------------------------------------------------------------
  let pickedName = categoryCode.value ? categoryInput.value : null;
  combo(
    categoryInput,
    $("category-hits"),
    (option) => {
      categoryCode.value = option.dataset.code;
      pickedName = option.dataset.path.split(" › ").pop();
      categoryInput.value = pickedName;
      chosen.classList.remove("chosen-none");
      const path = document.createElement("span");
      path.className = "chosen-path";
      path.textContent = option.dataset.path;
      const code = document.createElement("span");
      code.className = "code";
      code.textContent = option.dataset.code;
      const limit = document.createElement("span");
      limit.className = "chosen-limit";
      limit.textContent = option.querySelector(".opt-limit").textContent;
      chosen.replaceChildren(path, " ", code, " ", limit);
      correctedCategory();
      refreshDuplicates();
      (lonInput.value ? $("id_requester_name") : addressInput).focus();
    },
    // Enter in the category box sends the form only once a category is picked.
    { enterWithoutPick: () => Boolean(categoryCode.value) }
  );
  categoryInput.addEventListener("input", () => {
    if (pickedName !== null && categoryInput.value !== pickedName) {
      pickedName = null;
      categoryCode.value = "";
      chosen.classList.add("chosen-none");
      chosen.textContent = chosen.dataset.empty || "";
      refreshDuplicates();
    }
  });
  chosen.dataset.empty = T.noCategory;

  // -- place: a community or grid named in the address, at its centre ----------------------------
  combo(
    addressInput,
    $("place-hits"),
    (option) => {
      setPoint(option.dataset.lon, option.dataset.lat, "wgs84");
      $("id_requester_name").focus();
    },
    { enterWithoutPick: () => true }
  );

  // -- the point: the grid it falls in, and possible duplicates ---------------------------------
  function setPoint(lon, lat, crs) {
    lonInput.value = lon;
    latInput.value = lat;
    crsSelect.value = crs;
    locate();
  }

  function locate(keepErrors = false) {
    const lon = lonInput.value.trim();
    const lat = latInput.value.trim();
    if (!lon || !lat) {
      pointLayer.clearLayers();
      gridLayer.clearLayers();
      return;
    }
    if (!keepErrors) correctedPlace();
    htmx.ajax("GET", cfg.locate, {
      target: "#place-result",
      swap: "innerHTML",
      values: { lon, lat, crs: crsSelect.value },
    });
    refreshDuplicates();
  }

  function refreshDuplicates() {
    htmx.ajax("GET", cfg.duplicates, {
      target: "#duplicates",
      swap: "innerHTML",
      values: {
        lon: lonInput.value.trim(),
        lat: latInput.value.trim(),
        crs: crsSelect.value,
        category: categoryCode.value,
      },
    });
  }

  [lonInput, latInput, crsSelect].forEach((input) => input.addEventListener("change", () => locate()));

  // -- the map -------------------------------------------------------------------------------------
  const hasBasemap = Boolean(cfg.basemap.url);
  const map = L.map("intake-map", { zoomSnap: 0.5, minZoom: 3, maxZoom: hasBasemap ? 18 : 19, keyboard: false });
  map.attributionControl.setPrefix(false);
  if (hasBasemap) {
    L.tileLayer(cfg.basemap.url, { maxZoom: 18, attribution: cfg.basemap.attribution }).addTo(map);
    if (cfg.basemap.labelsUrl) L.tileLayer(cfg.basemap.labelsUrl, { maxZoom: 18, zIndex: 2 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
  map.on("movestart zoomstart", () => map.getContainer().setAttribute("data-moving", ""));
  map.on("moveend", () => map.getContainer().removeAttribute("data-moving"));

  const STYLES = {
    0: { color: "#0b3a75", weight: 2.5, fillColor: "#ffffff", fillOpacity: hasBasemap ? 0.03 : 0.92 },
    1: { color: "#c2410c", weight: 1.8, fill: false },
    2: { color: "#047857", weight: 1, dashArray: "5 4", fill: false },
  };
  const outlines = L.geoJSON(null, {
    interactive: false,
    style: (f) => ({ ...STYLES[f.properties.level], className: `intake-outline-${f.properties.level}` }),
    onEachFeature: (f, layer) => {
      if (f.properties.level === 2) {
        layer.bindTooltip(f.properties.name, { permanent: true, direction: "center", className: "intake-label", interactive: false });
      }
    },
  }).addTo(map);
  const gridLayer = L.geoJSON(null, {
    interactive: false,
    style: { color: "#7c3aed", weight: 2, fillColor: "#a78bfa", fillOpacity: 0.25, className: "intake-grid" },
  }).addTo(map);
  const pointLayer = L.layerGroup().addTo(map);

  const roots = cfg.roots.map((b) => L.latLngBounds([b[1], b[0]], [b[3], b[2]]));
  if (roots.length) map.fitBounds(roots.reduce((a, b) => a.extend(b)), { padding: [6, 6] });
  else map.setView([35.0, 105.0], 4);

  Promise.all(
    cfg.levels.map((level) =>
      fetch(`${cfg.geojson}?level=${level}`, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
        (response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status))))
      )
    )
  )
    .then((collections) => collections.forEach((fc) => outlines.addData(fc)))
    .catch(() => {
      const note = document.createElement("p");
      note.className = "muted small";
      note.textContent = T.mapFailed;
      map.getContainer().after(note);
    })
    .finally(() => map.getContainer().setAttribute("data-ready", ""));

  map.on("click", (event) => {
    setPoint(event.latlng.lng.toFixed(6), event.latlng.lat.toFixed(6), "wgs84");
  });

  // The grid path came: show the point where it is stored, and its grid.
  let gridSeq = 0;
  $("place-result").addEventListener("htmx:afterSwap", () => {
    const place = document.querySelector("#place-result .place[data-lon]");
    pointLayer.clearLayers();
    gridLayer.clearLayers();
    if (!place) return;
    const where = L.latLng(parseFloat(place.dataset.lat), parseFloat(place.dataset.lon));
    const inside = place.classList.contains("inside");
    L.circleMarker(where, {
      radius: 7,
      color: "#fff",
      weight: 2.5,
      fillColor: inside ? "#e0312b" : "#64748b",
      fillOpacity: 1,
      className: "intake-point",
    }).addTo(pointLayer);
    if (!map.getBounds().contains(where)) map.panTo(where);
    if (!place.dataset.grid) return;
    const seq = ++gridSeq;
    fetch(cfg.gridDetail + place.dataset.grid, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((grid) => {
        if (!grid || seq !== gridSeq) return;
        gridLayer.clearLayers();
        gridLayer.addData(grid.geometry);
        pointLayer.eachLayer((layer) => layer.bringToFront());
      })
      .catch(() => {});
  });

  // -- a form sent back: a corrected field loses its message; the banner goes with the last ----------
  function clearErrors(container) {
    if (!container) return;
    container.classList.remove("has-error");
    container.querySelectorAll(".has-error").forEach((el) => el.classList.remove("has-error"));
    container.querySelectorAll(".errorlist").forEach((el) => el.remove());
    if (!form.querySelector(".errorlist")) document.querySelectorAll(".intake-errors").forEach((el) => el.remove());
  }
  form.addEventListener("input", (event) => clearErrors(event.target.closest(".field, .reject-group")));
  form.addEventListener("change", (event) => clearErrors(event.target.closest(".field, .reject-group")));
  correctedCategory = () => clearErrors(categoryInput.closest(".field"));
  correctedPlace = () => {
    clearErrors($("location-errors"));
    form.querySelectorAll(".row-coords .field").forEach(clearErrors);
  };

  // -- a form sent back: the cursor where the first problem is, the point on the map -------------
  const firstError = form.querySelector(".has-error input:not([type=hidden]), .has-error textarea, .has-error select");
  if (firstError) firstError.focus();
  if (lonInput.value && latInput.value) locate(true);
  document.documentElement.dataset.intakeReady = "true"; // shortcuts are live
})();
