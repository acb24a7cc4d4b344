// The library: status badges, counts and arrivals kept live by polling /library.json.
"use strict";

(() => {
  const POLL_MS = 1500;
  const table = document.getElementById("videos");
  if (!table) return;
  const tbody = table.tBodies[0];
  const empty = document.getElementById("empty");
  const arriving = document.getElementById("arriving");
  const html = new Map(); // id -> html of the row as last rendered
  for (const tr of tbody.rows) html.set(tr.dataset.id, tr.outerHTML);
  let timer = null;
  let inFlight = false;

  // A poster the server could not send at once (503 with Retry-After when this browser
  // holds its share of the API's threads) is asked for again, a few times, later.
  const POSTER_TRIES = 3;
  table.addEventListener("error", (event) => {
    const img = event.target;
    if (!(img instanceof HTMLImageElement) || !img.classList.contains("thumb")) return;
    const tries = Number(img.dataset.tries || 0) + 1;
    if (tries > POSTER_TRIES) return;
    img.dataset.tries = String(tries);
    const src = img.dataset.src || img.getAttribute("src");  // with its ?v= version
    img.dataset.src = src;
    const joint = src.includes("?") ? "&" : "?";
    setTimeout(() => { img.src = `${src}${joint}retry=${tries}`; }, 1000 * tries);
  }, true);

  function fromHTML(text) {
    const t = document.createElement("tbody");
    t.innerHTML = text.trim();
    return t.firstElementChild;
  }

  function apply(data) {
    const wanted = [];
    for (const item of data.rows) {
      const id = String(item.id);
      let tr = tbody.querySelector(`tr[data-id="${id}"]`);
      if (!tr || html.get(id) !== item.html) {
        const fresh = fromHTML(item.html);
        if (tr) {
          if (tr.dataset.status !== item.status) {
            videodrop.announce(`${item.name} is now ${item.status}`);
          }
          // keep keyboard focus on the row's link across the swap
          const hadFocus = tr.contains(document.activeElement);
          tr.replaceWith(fresh);
          if (hadFocus) fresh.querySelector("a").focus();
        }
        fresh.classList.add("changed");
        tr = fresh;
        html.set(id, item.html);
        videodrop.localTimes(tr);
      }
      wanted.push(tr);
    }
    const keep = new Set(wanted);
    for (const tr of Array.from(tbody.rows)) {
      if (!keep.has(tr)) { tr.remove(); html.delete(tr.dataset.id); }
    }
    wanted.forEach((tr, i) => {
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    empty.hidden = wanted.length > 0;
    for (const el of document.querySelectorAll("[data-count]")) {
      const key = el.dataset.count;
      el.textContent = key === "all" ? data.total : (data.counts[key] ?? 0);
    }
    if (arriving.innerHTML.trim() !== data.arriving.trim()) arriving.innerHTML = data.arriving;
  }

  async function poll() {
    if (inFlight || document.hidden) return;
    inFlight = true;
    try {
      const resp = await fetch(table.dataset.live, { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (resp.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search)); return; }
      if (resp.ok) apply(await resp.json());
    } catch (e) {
      // the server is restarting or the network blinked: try again on the next tick
    } finally {
      inFlight = false;
    }
  }

  timer = window.setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  window.addEventListener("pagehide", () => window.clearInterval(timer));
})();
