/* The grid worker's report: the phone's location (WGS-84 from navigator.geolocation)
 * into the hidden lon/lat, else the server uses the chosen grid's centre; the picked
 * tile marked; the photo count shown. Works without it too (the grid's centre). */
(function () {
  "use strict";

  const form = document.getElementById("report-form");
  if (!form) return;
  const where = document.getElementById("where");
  const lon = form.querySelector("input[name=lon]");
  const lat = form.querySelector("input[name=lat]");

  function say(text) {
    if (where) where.textContent = text;
  }

  if (navigator.geolocation && lon && lat && !lon.value) {
    say(where.dataset.locating);
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        lon.value = pos.coords.longitude.toFixed(7);
        lat.value = pos.coords.latitude.toFixed(7);
        say(where.dataset.found.replace("{m}", Math.round(pos.coords.accuracy || 0)));
        where.classList.add("found");
      },
      () => say(where.dataset.fallback),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 }
    );
  }

  form.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name === "category") {
      form.querySelectorAll(".cat-tile").forEach((tile) => {
        tile.classList.toggle("picked", tile.contains(input) && input.checked);
      });
      const next = form.querySelector(".step-photo");
      if (next && next.scrollIntoView) next.scrollIntoView({ block: "center", behavior: "smooth" });
    }
    if (input.name === "photos") {
      const count = form.querySelector(".photo-count");
      const n = input.files ? input.files.length : 0;
      if (count) count.textContent = n ? count.dataset.chosen.replace("{n}", n) : "";
      form.querySelector(".photo-button").classList.toggle("done", n > 0);
    }
    if (input.name === "after_photos" || input.name === "result") {
      const box = form.querySelector("input[name=self_handle]");
      if (box && input.value) box.checked = true;
    }
  });

  // Enter in the search finds tiles; it does not send the report.
  const search = document.querySelector(".cat-search");
  if (search) {
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
  }
})();
