// The origins page's day strip: a click on a recording, or on a stretch of activity, opens
// its video at the time clicked (the link's own href opens it where the bar begins).
"use strict";

(() => {
  const strip = document.getElementById("strip");
  if (!strip) return;
  strip.addEventListener("click", (event) => {
    const link = event.target.closest("a.recording, a.activity");
    if (!link) return;
    const box = strip.getBoundingClientRect();
    const seconds = ((event.clientX - box.left) / box.width) * Number(strip.viewBox.baseVal.width);
    const into = seconds - Number(link.dataset.x) + Number(link.dataset.offset);
    const href = link.getAttribute("href").replace(/\?t=.*$/, "");
    event.preventDefault();
    location.assign(`${href}?t=${Math.max(0, into).toFixed(3)}`);
  });
})();
