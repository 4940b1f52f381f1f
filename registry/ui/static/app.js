// Copy buttons and delete confirmations; the pages work without this file
// except for copying.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain HTTP outside localhost has no clipboard API: copy from a
  // temporary, off-screen text area instead.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.left = "-9999px";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const label = button.textContent;
      copyText(button.dataset.copy).then(
        () => { button.textContent = "Copied"; button.classList.add("copied"); },
        () => { button.textContent = "Copy failed"; });
      setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 1500);
    });
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
