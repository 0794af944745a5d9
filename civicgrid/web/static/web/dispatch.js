/* The dispatcher queue: tick or untick every row of the page for the bulk dispatch. */
(function () {
  "use strict";

  const button = document.getElementById("select-all");
  if (!button) return;
  button.addEventListener("click", () => {
    const boxes = Array.from(document.querySelectorAll(`input[name="case"][form="${button.dataset.form}"]`));
    const tick = boxes.some((box) => !box.checked);
    boxes.forEach((box) => {
      box.checked = tick;
    });
  });
})();
