// Keeps "online now" fresh without reloading the page. Progressive: without
// script the page still shows what was true when it loaded. Names are put in
// with textContent, never as HTML.
(function () {
  "use strict";
  const api = document.querySelector('meta[name="rtc-api"]');
  // JupyterHub's auth accepts the login cookie on a script's request only with
  // the page's XSRF token (a cross-site page cannot read it); without it every
  // refresh is a 403.  The page template gives the token the service issued.
  const xsrf = document.querySelector('meta[name="xsrf-token"]');
  const spots = document.querySelectorAll("[data-online]");
  // the "online" badge beside each person (members, team members, the owner)
  const badges = document.querySelectorAll("[data-online-of]");
  if (!api || spots.length + badges.length === 0) return;

  function show(spot, names) {
    spot.replaceChildren();
    if (names.length === 0) {
      const none = document.createElement("span");
      none.className = "text-body-secondary";
      none.textContent = "nobody";
      spot.append(none);
      return;
    }
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = "Online now: ";
    spot.append(label, document.createTextNode(names.join(", ")));
  }

  async function refresh() {
    if (document.visibilityState === "hidden") return;  // a background tab costs the service nothing
    const ids = new Set([...Array.from(spots, (s) => s.dataset.online),
                         ...Array.from(badges, (b) => b.dataset.onlineOf)]);
    const headers = { Accept: "application/json" };
    if (xsrf && xsrf.content) headers["X-XSRFToken"] = xsrf.content;
    try {
      const reply = await fetch(api.content + "/sessions?state=active&limit=1000",
                                { credentials: "same-origin", headers: headers });
      if (!reply.ok) return;
      const body = await reply.json();
      for (const session of body.sessions) {
        if (!ids.has(session.id)) continue;
        const online = session.online || [];
        document.querySelectorAll('[data-online="' + CSS.escape(session.id) + '"]')
          .forEach((spot) => show(spot, online));
        document.querySelectorAll('[data-online-of="' + CSS.escape(session.id) + '"]')
          .forEach((badge) => { badge.hidden = !online.includes(badge.dataset.person); });
      }
    } catch (e) { /* offline for a moment: try again next round */ }
  }
  setInterval(refresh, 5000);
})();
