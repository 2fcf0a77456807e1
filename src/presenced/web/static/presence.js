// Keeps presence on a page live: one EventSource on the presence stream, no polling, no reloads.
// Elements [data-user-id] inside [data-stream] are updated in place; [data-field] children name what they show.
"use strict";

(function () {
  const container = document.querySelector("[data-stream]");
  const vocabularyElement = document.getElementById("vocabulary");
  if (!container || !vocabularyElement || !window.EventSource) return;
  const words = JSON.parse(vocabularyElement.textContent);
  const state = document.getElementById("live-state");
  const items = new Map();
  container.querySelectorAll("[data-user-id]").forEach((item) => items.set(item.dataset.userId, item));
  if (items.size === 0) return;

  function say(text) { if (state) state.textContent = text; }

  function describe(presence) {
    const first = words.availability[presence.availability] || presence.availability;
    const second = words.activity[presence.activity] || presence.activity;
    return first === second ? first : `${first} · ${second}`;
  }

  function setField(item, name, text) {
    item.querySelectorAll(`[data-field="${name}"]`).forEach((element) => {
      element.textContent = text || "";
      if (element.dataset.keep !== "shown") element.hidden = !text;
    });
  }

  function update(presence) {
    const item = items.get(presence.id);
    if (!item) return;
    // Sequence numbers rise per user and sort as strings: ignore anything not newer than what is shown.
    if (item.dataset.sequence && presence.sequenceNumber <= item.dataset.sequence) return;
    item.dataset.sequence = presence.sequenceNumber;
    const badge = item.querySelector(".badge");
    const was = badge ? badge.dataset.availability : null;
    const ooo = Boolean(presence.outOfOfficeSettings && presence.outOfOfficeSettings.isOutOfOffice);
    item.querySelectorAll(".badge").forEach((badge) => {
      badge.dataset.availability = presence.availability;
      badge.dataset.ooo = String(ooo);
    });
    setField(item, "words", describe(presence));
    const status = presence.statusMessage && presence.statusMessage.message ? presence.statusMessage.message.content : "";
    setField(item, "status", status);
    setField(item, "ooo", ooo ? "Out of office" : "");
    setField(item, "ooo-state", ooo ? "On" : "Off");
    setField(item, "ooo-message", ooo ? (presence.outOfOfficeSettings.message || "") : "");
    const location = presence.workLocation || {};
    setField(item, "location", words.location[location.workLocationType] || location.workLocationType || "");
    setField(item, "place", location.placeId || "");
    // "Last seen" is shown only while Offline: from the moment someone goes Offline, that is just now.
    if (presence.availability !== "Offline") setField(item, "seen", "");
    else if (was && was !== "Offline") setField(item, "seen", "Last seen just now");
    item.dispatchEvent(new CustomEvent("presence", { detail: presence, bubbles: true }));
  }

  const source = new EventSource(container.dataset.stream);
  source.addEventListener("open", () => say("Live: updates as presence changes."));
  source.addEventListener("error", () => say("Connection lost; reconnecting…"));
  source.addEventListener("presence", (event) => {
    try { update(JSON.parse(event.data)); } catch (error) { /* a malformed event changes nothing */ }
  });
  // After "overflow" the server ends the stream; EventSource reconnects with Last-Event-ID and catches up.
  // "closing" says why the server ends it: shutting down (EventSource reconnects a second later, to another
  // process), or the portal session is over, signed out or expired: then there is nothing to reconnect to.
  source.addEventListener("closing", (event) => {
    let reason = "";
    try { reason = JSON.parse(event.data).reason; } catch (error) { /* no reason given */ }
    if (reason === "signedOut" || reason === "sessionExpired") {
      source.close();
      say("Signed out: sign in again to see changes live.");
    }
  });
  window.addEventListener("pagehide", () => source.close());
})();
