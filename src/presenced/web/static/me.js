// My presence: keep the portal's presence session alive while the person uses this page, as a Teams client does.
// The session is refreshed at most once a minute, and only after some use of the page since the last refresh,
// so someone who stops using it fades to Inactive after 5 minutes and Away after 10 (the server's rules).
// Leaving the page ends the session 15 seconds later, unless a page of the portal refreshes it first: a reload or
// a form that comes back here does, so saving a status never flickers Offline. Following a link to another
// portal page does not end it either; that page just does not keep it alive.
// The local time shown ticks with the mailbox time zone's offset.
"use strict";

(function () {
  const form = document.getElementById("session-form");
  if (!form) return;
  const csrf = new FormData(form).get("csrf");
  const body = () => new URLSearchParams({ csrf });
  const REFRESH_MS = 60 * 1000;
  let usedSinceRefresh = true;
  let timer = null;

  async function refresh() {
    usedSinceRefresh = false;
    try {
      await fetch("/me/session", { method: "POST", body: body(), credentials: "same-origin" });
    } catch (error) { /* offline for a moment: the next use tries again */ }
  }

  function used() {
    if (usedSinceRefresh) return;
    usedSinceRefresh = true;
    if (timer === null) {
      // Back from idle: show as active at once, then settle into the once-a-minute rhythm.
      refresh();
      timer = setInterval(tick, REFRESH_MS);
    }
  }

  function tick() {
    if (usedSinceRefresh) {
      refresh();
    } else {
      clearInterval(timer);
      timer = null; // idle: let the session fade
    }
  }

  for (const name of ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"]) {
    window.addEventListener(name, used, { passive: true });
  }
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") used(); });
  let stayingInPortal = false;
  document.addEventListener("submit", () => { stayingInPortal = true; });
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    // Only a link that replaces this page with another of the portal's: not one within the page, not one
    // opened in a new tab or window, not a download.
    const elsewhere = link && (link.target && link.target !== "_self" || link.hasAttribute("download"));
    const modified = event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey;
    const samePage = link && link.pathname === window.location.pathname && link.search === window.location.search;
    if (link && link.origin === window.location.origin && !elsewhere && !modified && !samePage) {
      stayingInPortal = true;
    }
  });
  window.addEventListener("pageshow", (event) => {
    stayingInPortal = false;
    if (event.persisted) refresh(); // back from the browser's page cache: open again, so active again
  });
  window.addEventListener("pagehide", () => {
    if (!stayingInPortal) navigator.sendBeacon("/me/session/end", body());
  });

  refresh();
  timer = setInterval(tick, REFRESH_MS);

  const clock = document.getElementById("local-time");
  if (clock) {
    // The server's clock may be an emulator's manual clock: keep its distance from this machine's.
    const skew = (Number(clock.dataset.now) || Date.now()) - Date.now();
    const offset = Number(clock.dataset.offsetMinutes) || 0;
    const show = () => {
      const local = new Date(Date.now() + skew + offset * 60 * 1000);
      clock.textContent = local.toISOString().slice(11, 16);
    };
    setInterval(show, 15 * 1000);
  }
})();
