// Small progressive enhancements; every form and link works without them.

// Dialogs swapped in by HTMX (confirmations, add user) open as modal dialogs.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "dialog-slot") {
    const dialog = event.detail.target.querySelector("dialog[data-open-on-load]");
    if (dialog && !dialog.open) dialog.showModal();
  } else if (!event.detail.elt?.closest?.("#dialog-slot")) {
    // The work is done and the list re-rendered: close what asked for it. (A swap asked for
    // from inside the dialog, such as the contact picker's suggestions, leaves it open.)
    document.querySelectorAll("#dialog-slot dialog[open]").forEach((dialog) => dialog.close());
    // An outcome that replaces what opened the dialog (the contacts' bulk enable) takes the
    // focus, once the closing dialog has tried to give it back to a control that is gone.
    const outcome = event.detail.target.querySelector?.("[data-focus-on-load]");
    if (outcome) setTimeout(() => outcome.focus(), 0);
  }
});

// Focus goes back to what opened a dialog (a row's Actions button, say) when it closes.
// The list may have been re-rendered meanwhile (the action is done): then the same row's
// button in the new list takes it.
let dialogOpener = null;
let dialogOpenerRow = "";
document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.target?.id === "dialog-slot") {
    const opener = event.detail.elt;
    dialogOpener = opener.closest(".row-menu")?.querySelector("summary") || opener;
    dialogOpenerRow = opener.closest("tr[id]")?.id || "";
  }
});
document.addEventListener("close", (event) => {
  if (!event.target.closest?.("#dialog-slot")) return;
  if (dialogOpener?.isConnected) {
    dialogOpener.focus();
  } else if (dialogOpenerRow) {
    document.getElementById(dialogOpenerRow)?.querySelector(".row-menu summary")?.focus();
  }
}, true);

// Cancel inside a dialog closes it instead of following the link.
document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close-dialog]");
  const dialog = closer && closer.closest("dialog");
  if (dialog) {
    event.preventDefault();
    dialog.close();
  }
  const selectAll = event.target.closest("[data-select-all]");
  if (selectAll) {
    selectAll.closest("table").querySelectorAll("tbody input[name=ids]").forEach((box) => {
      box.checked = selectAll.checked;
    });
  }
});

// The bulk buttons wait for a selection ("Reinvite 0 users?" helped nobody). Only with
// JavaScript: without it they stay enabled and the server answers an empty selection plainly.
function syncBulkBar(form) {
  const chosen = form.querySelector("input[name=ids]:checked, input[name=all_matching]:checked");
  form.querySelectorAll(".bulk-bar button[name=action]").forEach((button) => {
    button.disabled = !chosen;
  });
}
document.addEventListener("change", (event) => {
  const form = event.target.closest?.("#bulk-form");
  // The select-all box's change comes after its click handler has ticked the rows.
  if (form && event.target.type === "checkbox") syncBulkBar(form);
});
// A re-rendered list, and a page the browser restored with its boxes still ticked.
document.addEventListener("htmx:load", (event) => {
  const { elt } = event.detail;
  const form = elt.closest?.("#bulk-form") || elt.querySelector?.("#bulk-form");
  if (form) syncBulkBar(form);
});
window.addEventListener("pageshow", () => {
  const form = document.getElementById("bulk-form");
  if (form) syncBulkBar(form);
});

// A bulk-action button submits through HTMX: tell the server which one was pressed.
document.addEventListener("htmx:configRequest", (event) => {
  const submitter = event.detail.triggeringEvent && event.detail.triggeringEvent.submitter;
  if (submitter && submitter.name && !(submitter.name in event.detail.parameters)) {
    event.detail.parameters[submitter.name] = submitter.value;
  }
});

// One row menu open at a time; choosing an action closes it. An open menu floats above the
// page (the table clips what spills past its edge: the last rows' menus showed only their top)
// and opens upwards when there is no room below it.
function closeRowMenus(except) {
  document.querySelectorAll("details.row-menu[open]").forEach((menu) => {
    if (menu !== except) menu.open = false;
  });
}
function floatRowMenu(details) {
  const menu = details.querySelector(".menu");
  const anchor = details.querySelector("summary").getBoundingClientRect();
  menu.classList.add("menu-floating");
  const gap = 4;
  const { offsetHeight: height, offsetWidth: width } = menu;
  const roomBelow = window.innerHeight - anchor.bottom;
  const upwards = roomBelow < height + gap && anchor.top > roomBelow;
  const top = upwards ? anchor.top - height - gap : anchor.bottom + gap;
  const left = Math.min(anchor.right - width, window.innerWidth - width - gap);
  menu.style.top = `${Math.max(gap, top)}px`;
  menu.style.left = `${Math.max(gap, left)}px`;
  menu.classList.toggle("menu-upwards", upwards);
}
document.addEventListener("toggle", (event) => {
  if (event.target.matches?.("details.row-menu") && event.target.open) {
    closeRowMenus(event.target);
    floatRowMenu(event.target);
  }
}, true);
// A floating menu follows its row while the page or the table scrolls (a touch scroll of a few
// pixels must not close it), and closes once its row has left the screen.
function followRowMenus() {
  document.querySelectorAll("details.row-menu[open]").forEach((details) => {
    const anchor = details.querySelector("summary").getBoundingClientRect();
    const visible = anchor.bottom > 0 && anchor.top < window.innerHeight
      && anchor.right > 0 && anchor.left < window.innerWidth;
    if (visible) floatRowMenu(details);
    else details.open = false;
  });
}
window.addEventListener("scroll", (event) => {
  if (!event.target.closest?.(".row-menu")) followRowMenus();
}, { capture: true, passive: true });
window.addEventListener("resize", followRowMenus);
document.addEventListener("keydown", (event) => {
  const open = document.querySelector("details.row-menu[open]");
  if (event.key === "Escape" && open) {
    open.open = false;
    open.querySelector("summary").focus();
  }
});
document.addEventListener("htmx:beforeRequest", () => {
  document.querySelectorAll("details.row-menu[open]").forEach((menu) => { menu.open = false; });
});

// A field to copy (a secret shown once, the portal URL): its Copy button appears only where
// JavaScript can run it; without it the field is still selectable.
document.addEventListener("htmx:load", (event) => {
  event.detail.elt.querySelectorAll?.("[data-copy-field][hidden]").forEach((button) => {
    button.hidden = false;
  });
  // The field may have taken focus (autofocus) before this script ran.
  const focused = document.activeElement;
  if (focused?.matches("[data-select-on-focus]") && event.detail.elt.contains(focused)) {
    focused.select();
  }
});
// A secret's field selects itself on focus, ready for Ctrl+C. Not an onfocus="" attribute:
// the Content-Security-Policy blocks inline handlers.
document.addEventListener("focusin", (event) => {
  if (event.target.matches?.("[data-select-on-focus]")) event.target.select();
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-field]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyField);
  const status = document.getElementById(`${field.id}-status`);
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied to the clipboard.";
  } catch {
    field.select();
    status.textContent = "Press Ctrl+C (⌘C on a Mac) to copy.";
  }
});

// The page's messages belong to the request that rendered it: once HTMX has swapped in the
// outcome of a later action (which brings its own message), they would only mislead.
document.addEventListener("htmx:afterSwap", () => {
  document.getElementById("page-messages")?.remove();
});

// Messages float as a toast at the bottom of the window, where the eye is after a row action on
// a long list (the message is rendered at the top of the list, maybe far above). The message
// itself moves (its role="status" region announces it once); without JavaScript it stays at
// the top of the page. A card's messages stay in the card, beside what was done. A success
// fades after a while unless pointed at or focused; an error stays until dismissed or replaced.
const TOAST_SECONDS = 8;
let toastTimer = null;
function toastRegion() {
  let region = document.getElementById("toasts");
  if (!region) {
    region = document.createElement("div");
    region.id = "toasts";
    region.className = "toasts";
    region.addEventListener("mouseenter", () => clearTimeout(toastTimer));
    region.addEventListener("focusin", () => clearTimeout(toastTimer));
    region.addEventListener("mouseleave", () => {
      if (region.dataset.fades) fadeLater();
    });
    document.body.append(region);
  }
  return region;
}
function fadeLater() {
  clearTimeout(toastTimer);
  toastTimer = setTimeout(dismissToast, TOAST_SECONDS * 1000);
}
function dismissToast() {
  clearTimeout(toastTimer);
  document.getElementById("toasts")?.replaceChildren();
}
function showToast(messages) {
  const region = toastRegion();
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss the message");
  close.textContent = "×";
  close.addEventListener("click", dismissToast);
  messages.classList.add("toast");
  messages.append(close);
  region.replaceChildren(messages);
  placeToast();
  clearTimeout(toastTimer);
  const fades = !messages.querySelector(".message-error, .message-warning");
  if (fades) {
    region.dataset.fades = "1";
    fadeLater();
  } else {
    delete region.dataset.fades;
  }
}
// The toast never covers what has focus (the row's Actions button, back from the dialog, is
// often at the bottom of the window): it moves to the top of the window instead.
function placeToast() {
  const region = document.getElementById("toasts");
  const focused = document.activeElement;
  if (!region?.firstChild || region.contains(focused)) return; // never move under the pointer
  region.classList.remove("toasts-top");
  if (!focused || focused === document.body) return;
  const a = region.getBoundingClientRect();
  const b = focused.getBoundingClientRect();
  const overlaps = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  region.classList.toggle("toasts-top", overlaps);
}
document.addEventListener("focusin", placeToast);
function toastMessagesIn(root) {
  if (!root?.querySelectorAll) return;
  const found = [...root.querySelectorAll(".messages")];
  if (root.matches?.(".messages")) found.push(root);
  // A card's own messages (the contact's portal-user card) already sit beside what was done.
  const messages = found.filter((element) => !element.closest("#toasts, dialog, .card"));
  if (messages.length) showToast(messages[messages.length - 1]);
}
toastMessagesIn(document);
document.addEventListener("htmx:load", (event) => toastMessagesIn(event.detail.elt));
// Like the page's messages, a toast belongs to the request that brought it: a later swap (a new
// tab, the outcome of the next action) takes it away; its own message, if any, comes after.
// Opening a dialog does not.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target?.id !== "dialog-slot") dismissToast();
});

// The time zone page offers the browser's own zone (without JavaScript: pick it in the list).
document.querySelectorAll("[data-browser-zone-for]").forEach((offer) => {
  const select = document.getElementById(offer.dataset.browserZoneFor);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!select || !zone || ![...select.options].some((option) => option.value === zone)) return;
  const button = offer.querySelector("button");
  button.textContent = `Use this browser's time zone (${zone})`;
  button.addEventListener("click", () => { select.value = zone; });
  offer.hidden = false;
});
