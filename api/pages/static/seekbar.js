// The player's seek bar (#seekbar under video#player): click, drag (mouse, pen or touch)
// or arrow keys to seek. While the pointer hovers or drags on it, the storyboard's tile for
// the time under the pointer shows above it, or below it when the screen has no room above
// (under the page's sticky header)
// (docs/derivatives.md), when the storyboard is
// ready (data-storyboard: the JSON's path). The JSON is fetched once, on the first hover,
// and each sheet is loaded once (the browser caches it for every tile it holds).
"use strict";

(() => {
  const bar = document.getElementById("seekbar");
  const player = document.getElementById("player");
  if (!bar || !player) return;
  const played = bar.querySelector(".seek-played");
  const preview = bar.querySelector(".seek-preview");
  const tileBox = preview.querySelector(".seek-tile");
  const label = preview.querySelector(".seek-time");
  let board = null;  // the storyboard's JSON once fetched (tiles sorted by start)
  let asked = false;
  let dragging = false;
  let hovering = false;
  let lastX = null;  // clientX of the last pointer position over the bar

  // The media's duration once the player knows it, else the catalog's (seconds).
  const duration = () => (Number.isFinite(player.duration) && player.duration > 0
    ? player.duration : Number(bar.dataset.duration) || 0);

  // Same-origin path of an absolute URL of the API (the page's CSP: img-src 'self').
  const local = (url) => { const u = new URL(url, location.href); return u.pathname + u.search; };

  function load() {
    if (asked || !bar.dataset.storyboard) return;
    asked = true;
    fetch(bar.dataset.storyboard, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((json) => {
        if (!json || !Array.isArray(json.tiles) || !json.tiles.length) return;
        board = json;
        board.tiles.sort((a, b) => a.start - b.start);
        for (const sheet of board.sheets || []) new Image().src = local(sheet);  // warm the cache
        if ((hovering || dragging) && lastX !== null) show(lastX);
      })
      .catch(() => { /* no previews: seeking still works */ });
  }

  // The tile whose [start, end) holds t: the last one starting at or before t.
  function tileAt(t) {
    const tiles = board.tiles;
    let lo = 0;
    let hi = tiles.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (tiles[mid].start <= t) lo = mid; else hi = mid - 1;
    }
    return tiles[lo];
  }

  function fraction(clientX) {
    const track = bar.querySelector(".seek-track").getBoundingClientRect();
    return track.width > 0 ? Math.min(1, Math.max(0, (clientX - track.left) / track.width)) : 0;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
    return `${h ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
  }

  function show(clientX) {
    lastX = clientX;
    const t = fraction(clientX) * duration();
    if (!board) { preview.hidden = true; return; }
    const tile = tileAt(t);
    tileBox.style.width = `${tile.w}px`;
    tileBox.style.height = `${tile.h}px`;
    tileBox.style.backgroundImage = `url("${local(tile.url)}")`;
    tileBox.style.backgroundPosition = `-${tile.x}px -${tile.y}px`;
    label.textContent = clock(t);
    preview.dataset.start = tile.start;
    preview.hidden = false;
    // centred over the pointer, kept inside the bar; above it, or below it when the
    // screen has no room above (the page scrolled, or the bar at the top of the card)
    const box = bar.getBoundingClientRect();
    const room = box.top - ceiling();
    preview.classList.toggle("below", room < preview.offsetHeight + 4
                                      && window.innerHeight - box.bottom > room);
    const width = preview.offsetWidth;
    const left = Math.min(Math.max(0, clientX - box.left - width / 2), Math.max(0, box.width - width));
    preview.style.left = `${left}px`;
  }

  // The top of the screen's free part: under the page's header when it stays on screen.
  function ceiling() {
    const header = document.querySelector(".topbar");
    if (!header || !["sticky", "fixed"].includes(getComputedStyle(header).position)) return 0;
    return Math.max(0, header.getBoundingClientRect().bottom);
  }

  function hide() { if (!dragging && !hovering) preview.hidden = true; }

  function seek(clientX) {
    const d = duration();
    if (d > 0) player.currentTime = fraction(clientX) * d;
  }

  bar.addEventListener("pointerenter", (e) => {
    if (e.pointerType === "mouse") hovering = true;
    load();
  });
  bar.addEventListener("pointermove", (e) => {
    if (dragging) seek(e.clientX);
    if (dragging || hovering) show(e.clientX);
  });
  bar.addEventListener("pointerleave", () => { hovering = false; hide(); });
  bar.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    load();
    dragging = true;
    bar.classList.add("dragging");
    try { bar.setPointerCapture(e.pointerId); } catch { /* a pointer already gone */ }
    seek(e.clientX);
    show(e.clientX);
    e.preventDefault();
  });
  const end = (e) => {
    if (!dragging) return;
    dragging = false;
    bar.classList.remove("dragging");
    if (e.pointerType !== "mouse") hovering = false;  // a finger lifted: nothing hovers
    hide();
  };
  bar.addEventListener("pointerup", end);
  bar.addEventListener("pointercancel", end);

  bar.addEventListener("keydown", (e) => {
    const step = { ArrowLeft: -5, ArrowRight: 5, Home: -Infinity, End: Infinity }[e.key];
    if (step === undefined || !(duration() > 0)) return;
    player.currentTime = Math.min(duration(), Math.max(0, player.currentTime + step));
    e.preventDefault();
  });

  const progress = () => {
    const d = duration();
    played.style.width = `${d > 0 ? (100 * player.currentTime) / d : 0}%`;
    bar.setAttribute("aria-valuenow", player.currentTime.toFixed(1));
    bar.setAttribute("aria-valuetext", `${clock(player.currentTime)} of ${clock(d)}`);
  };
  player.addEventListener("timeupdate", progress);
  player.addEventListener("durationchange", () => {
    bar.setAttribute("aria-valuemax", duration().toFixed(1));
    progress();
  });
})();
