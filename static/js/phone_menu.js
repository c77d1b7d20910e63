// On a narrow screen the top bar's links and an account's section tabs fold behind one Menu
// button (app.css, .menu-folds), so that a list starts in the first screen. Without this script
// nothing folds and every link stays in view.
(function () {
  "use strict";
  const root = document.documentElement;
  const button = document.querySelector(".menu-button");
  if (!button) return;
  root.classList.add("menu-folds");
  button.hidden = false;
  function setOpen(open) {
    root.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", String(open));
  }
  button.addEventListener("click", () => setOpen(!root.classList.contains("menu-open")));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.classList.contains("menu-open")) {
      setOpen(false);
      button.focus();
    }
  });
})();
