// docket dashboard: refreshes the live parts of the page (elements with an id and
// `data-live`) from the same URL as soon as a document's progress event arrives (server-sent
// events from /ui/events) and every few seconds besides; asks before destructive one-item
// actions (the bulk and pausing ones are confirmed by the server, script or not). Its
// refreshes say so (X-Docket-Refresh), so that they leave an action's message for the page
// it was meant for. No framework, no build step.
"use strict";

(function () {
  const INTERVAL_MS = 3000;
  const status = document.getElementById("live-status");

  document.addEventListener("submit", function (e) {
    const msg = (e.submitter && e.submitter.getAttribute("data-confirm"))
      || e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  function live() {
    return Array.from(document.querySelectorAll("[data-live][id]"));
  }

  // Leave a region alone while the keyboard focus or a checked box is inside it, so
  // that refreshing never steals focus or a selection.
  function busy(el) {
    return el.contains(document.activeElement) && document.activeElement !== document.body
      || el.querySelector("input:checked") !== null;
  }

  let failures = 0;
  async function refresh() {
    if (document.hidden || live().length === 0) return;
    try {
      const r = await fetch(window.location.href, {
        headers: { "Accept": "text/html", "X-Docket-Refresh": "1" },
        credentials: "same-origin",
        redirect: "manual",
      });
      if (r.type === "opaqueredirect" || r.status === 401) {
        window.location.assign("/ui/login");
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      for (const el of live()) {
        const fresh = doc.getElementById(el.id);
        if (fresh && fresh.innerHTML !== el.innerHTML && !busy(el)) {
          el.innerHTML = fresh.innerHTML;
        }
      }
      if (failures > 0 && status) status.textContent = "";
      failures = 0;
    } catch (err) {
      failures += 1;
      if (status) status.textContent = "Live updates paused: the server does not answer (" + err.message + ").";
    }
  }

  window.setInterval(refresh, INTERVAL_MS);

  // Progress events: refresh at once (at most every 300 ms while they stream in).
  let soon = null;
  if (window.EventSource && live().length > 0) {
    const events = new EventSource("/ui/events");
    events.addEventListener("progress", function () {
      if (soon === null) {
        soon = window.setTimeout(function () { soon = null; refresh(); }, 300);
      }
    });
    window.addEventListener("pagehide", function () { events.close(); });
  }
})();
