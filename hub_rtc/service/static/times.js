// Shows every time in the reader's own time zone and language.  The server
// writes each as UTC text (what shows without script) and keeps the exact
// moment beside it: <time datetime="…"> in pages, data-datetime on the
// chart's SVG text.  Text is set with textContent, never as HTML.
(function () {
  "use strict";
  // the zone is named ("GMT+13", "CET") because the fallback text says UTC
  const dateAndTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function localize(element, iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return;  // not a time: keep what the server wrote
    const format = element.hasAttribute("data-time-only") ? timeOnly : dateAndTime;
    const utc = element.textContent;
    element.textContent = (element.getAttribute("data-label") || "") + format.format(moment);
    // in a page, the UTC text stays one hover away (an SVG <title> is itself a tooltip)
    if (element.tagName.toLowerCase() === "time") element.title = utc.trim();
  }

  function localizeAll(root) {
    root.querySelectorAll("time[datetime]")
      .forEach((element) => localize(element, element.getAttribute("datetime")));
    root.querySelectorAll("[data-datetime]")
      .forEach((element) => localize(element, element.getAttribute("data-datetime")));
  }

  localizeAll(document);
  // for what livepage.js puts in later
  window.hubRtcLocalize = localizeAll;
})();
