// presenced's pages: filtering as you type, copying a page's address. No framework, nothing fetched from elsewhere.
"use strict";

// <input data-filter="#list"> hides the list's [data-search] items that do not contain every typed word.
// Escape clears it; an element [data-filter-count="#list"] says how many are shown.
function setUpFilter(input) {
  const list = document.querySelector(input.dataset.filter);
  if (!list) return;
  const items = Array.from(list.querySelectorAll("[data-search]"));
  const counter = document.querySelector(`[data-filter-count="${input.dataset.filter}"]`);
  const empty = document.querySelector(`[data-filter-empty="${input.dataset.filter}"]`);
  function apply() {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const item of items) {
      const text = item.dataset.search.toLowerCase();
      const match = words.every((w) => text.includes(w));
      item.hidden = !match;
      if (match) shown += 1;
    }
    if (counter) counter.textContent = `${shown} of ${items.length} shown`;
    if (empty) empty.hidden = shown !== 0;
  }
  input.addEventListener("input", apply);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      input.value = "";
      apply();
      event.preventDefault();
    }
  });
  // A search form still works without script; with it, filtering is immediate.
  const form = input.form;
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  apply();
}

// <button data-copy-url> copies the page's address; <button data-copy="text"> copies the text.
function setUpCopy(button) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = button.dataset.copy || window.location.href;
    const status = document.getElementById("copy-status");
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied to the clipboard.";
    } catch (error) {
      if (status) status.textContent = `Copy this address: ${text}`;
    }
  });
}

document.querySelectorAll("input[data-filter]").forEach(setUpFilter);
document.querySelectorAll("button[data-copy-url], button[data-copy]").forEach(setUpCopy);
