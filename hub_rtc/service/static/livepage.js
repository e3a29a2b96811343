// Keeps a page's live sections (data-live: the instructor's chart, who changed which
// cell, refused attempts) fresh without a reload.  Every 10 s, while the tab is in
// front, it asks the service for the same page and puts in each section as the
// server rendered it (escaped there, like the page itself; DOMParser runs no script).
// Without script the page shows what was true when it loaded.
(function () {
  "use strict";
  const live = document.querySelectorAll("section[data-live][id]");
  if (live.length === 0) return;
  const EVERY_MS = 10000;
  // JupyterHub takes the login cookie on a script's request, even a GET, only with the
  // page's XSRF token (see live.js)
  const xsrf = document.querySelector('meta[name="xsrf-token"]');

  async function refresh() {
    if (document.visibilityState === "hidden") return;
    try {
      const headers = { Accept: "text/html" };
      if (xsrf && xsrf.content) headers["X-XSRFToken"] = xsrf.content;
      const reply = await fetch(window.location.href, { credentials: "same-origin", headers: headers });
      if (!reply.ok) return;
      const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
      document.querySelectorAll("section[data-live][id]").forEach((section) => {
        const update = fresh.getElementById(section.id);
        if (!update || update.innerHTML === section.dataset.rendered) return;
        const open = Array.from(section.querySelectorAll("details[open]"), (d) => d.id);
        const copy = document.importNode(update, true);
        copy.dataset.rendered = update.innerHTML;
        open.forEach((id) => { const d = id && copy.querySelector("#" + CSS.escape(id)); if (d) d.open = true; });
        section.replaceWith(copy);
        if (window.hubRtcLocalize) window.hubRtcLocalize(copy);
      });
    } catch (e) { /* offline for a moment: try again next round */ }
  }
  live.forEach((section) => { section.dataset.rendered = section.innerHTML; });
  setInterval(refresh, EVERY_MS);
})();
