// The video page: follow a video still processing, and a ready one's derivatives and
// rendition while they are made (no reload); rotate/revoke/hold/delete with confirmation.
"use strict";

(() => {
  const article = document.getElementById("video");
  if (!article) return;
  const id = article.dataset.id;
  const dialog = document.getElementById("confirm");
  const errorBox = document.getElementById("action-error");

  const expiryField = document.getElementById("confirm-expiry");
  const expiry = document.getElementById("expiry");

  function confirmAction(title, text, okLabel, asksExpiry) {
    return new Promise((resolve) => {
      expiryField.hidden = !asksExpiry;
      expiry.value = "";
      document.getElementById("confirm-title").textContent = title;
      document.getElementById("confirm-text").textContent = text;
      document.getElementById("confirm-ok").textContent = okLabel;
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  const actions = {
    rotate: {
      title: "Rotate the token?", ok: "Rotate",
      text: "New links are made now; the current links stop working at once.",
      asksExpiry: true,
      run: async () => {
        const seconds = Number(expiry.value);  // "" (never): no body, a token without expiry
        const body = seconds ? { expires_at: new Date(Date.now() + seconds * 1000).toISOString() } : undefined;
        await videodrop.api("POST", `/api/videos/${id}/token`, body);
        location.assign(`/videos/${id}?done=rotated`);
      },
    },
    revoke: {
      title: "Revoke the token?", ok: "Revoke",
      text: "Every link of this video will answer 404 until you rotate the token.",
      run: async () => { await videodrop.api("DELETE", `/api/videos/${id}/token`); location.assign(`/videos/${id}?done=revoked`); },
    },
    hold: {
      title: "Hold this video?", ok: "Hold",
      text: "No retention rule will remove it until you lift the hold.",
      run: async () => { await videodrop.api("POST", `/api/videos/${id}/hold`); location.assign(`/videos/${id}?done=held`); },
    },
    release: {
      title: "Lift the hold?", ok: "Lift",
      text: "The retention rules apply to this video again; the next pass may remove it.",
      run: async () => { await videodrop.api("DELETE", `/api/videos/${id}/hold`); location.assign(`/videos/${id}?done=released`); },
    },
    delete: {
      title: "Delete this video?", ok: "Delete",
      text: "The record and the stored file are removed. This cannot be undone.",
      run: async () => { await videodrop.api("DELETE", `/api/videos/${id}`); location.assign("/?done=deleted"); },
    },
  };

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const action = actions[button.dataset.action];
      if (!(await confirmAction(action.title, action.text, action.ok, action.asksExpiry))) { button.focus(); return; }
      errorBox.hidden = true;
      button.disabled = true;
      try {
        await action.run();
      } catch (e) {
        errorBox.textContent = `Could not ${button.dataset.action}: ${e.message}`;
        errorBox.hidden = false;
        button.disabled = false;
      }
    });
  }

  // A file the browser cannot play (WMV, FLV, HEVC in most builds): the media element
  // fails (error), or plays the sound over no picture (no videoWidth once the metadata is
  // in). Say so, with the download link, instead of a dead or black player; the poster
  // stands in for the player as a still.
  const player = document.getElementById("player");
  const problem = document.getElementById("player-problem");
  // An HEVC rendition is ready or on its way (docs/playback.md): where the browser decodes
  // HEVC it plays that (a stream copy, no transcode asked for; one on its way once it is
  // made, apply() below: reading /stream/ meanwhile would ask for the transcode);
  // elsewhere /stream/, the version every browser plays (or the original while it is
  // made).
  let hevcFailed = false;  // it said it decodes HEVC, then failed on this one
  const decodesHevc = (type) => Boolean(player && type && !hevcFailed
                                        && player.canPlayType(type));
  const HEVC_LINE = "Playing the HEVC version: the same video and sound, index first, for"
    + " browsers that decode HEVC, as this one does.";
  const sayHevc = () => {
    const state = document.getElementById("playback-state");
    if (!state) return;
    const line = document.createElement("p");
    line.className = "rendition-line muted";
    line.dataset.rendition = "hevc";
    line.textContent = HEVC_LINE;
    state.replaceChildren(line);
    state.dataset.renditionStatus = "hevc";
    state.hidden = false;
  };
  // how many more polls follow a fallback's /stream/ read (the transcode it asks for)
  let following = 0;
  if (player && player.dataset.hevcType) {
    if (!decodesHevc(player.dataset.hevcType)) {
      player.src = player.dataset.src;
    } else if (player.dataset.hevcSrc) {
      player.dataset.served = player.dataset.stream;  // what /stream/ serves (data-src)
      player.dataset.stream = "hevc";
      player.src = player.dataset.hevcSrc;
      sayHevc();
    }
  }
  const still = () => document.getElementById("poster-still");  // the poster, when ready
  if (player && problem) {
    // canPlayType said yes but this HEVC does not decode here (an error, or sound over no
    // picture: a decoder's profile or level limit): the version every browser plays
    // instead (its read asks for it, followed by the polls)
    const leaveHevc = () => {
      if (player.dataset.stream !== "hevc" || !player.dataset.src) return false;
      hevcFailed = true;
      switchStream(player.dataset.src, player.dataset.served || "original");
      following = 3;
      return true;
    };
    const cannotPlay = () => {
      if (leaveHevc()) return;
      problem.hidden = false;
      player.classList.add("unplayable");
      if (still()) still().hidden = false;  // the seek bar's previews still browse the video
    };
    const noPicture = () => {  // the sound may still play: keep the player, say why it is dark
      if (player.dataset.hasVideo === "true" && player.videoWidth === 0 && !leaveHevc()) {
        problem.hidden = false;
      }
    };
    player.addEventListener("error", cannotPlay);
    player.addEventListener("loadedmetadata", noPicture);
    // the script is deferred: the element may have failed or loaded before it ran
    if (player.error) cannotPlay();
    else if (player.readyState >= 1) noPicture();
  }

  // ?t=<seconds> (a timeline's click-through, api/pages/static/timeline.js): start there.
  const startAt = Number(new URLSearchParams(location.search).get("t"));
  if (player && startAt > 0) {
    const seek = () => { if (startAt < player.duration) player.currentTime = startAt; };
    if (player.readyState >= 1) seek();
    else player.addEventListener("loadedmetadata", seek, { once: true });
  }

  // The rendition is ready (docs/playback.md): play it in place of the original, from where
  // the original was, playing on if it was playing; no reload.
  function switchStream(src, stream) {
    if (!player || !src) return;
    const at = player.error ? 0 : player.currentTime;
    const playing = !player.paused && !player.ended;
    problem.hidden = true;
    player.classList.remove("unplayable");
    if (still()) still().hidden = true;
    player.dataset.stream = stream;
    player.addEventListener("loadedmetadata", () => {
      if (at > 0 && at < player.duration) player.currentTime = at;
      if (playing) player.play().catch(() => { /* the user presses play */ });
    }, { once: true });
    player.src = src;
    videodrop.announce("A version your browser can play is ready; the player now plays it.");
  }

  // A poster made while the page was open: the player's poster, and the still of a file
  // the browser cannot play.
  function showPoster(path) {
    if (!player || !path || player.getAttribute("poster") === path) return;
    player.setAttribute("poster", path);
    let img = still();
    if (!img) {
      img = document.createElement("img");
      img.id = "poster-still";
      img.className = "poster-still";
      img.alt = `A still of ${document.querySelector("h1").firstChild.textContent.trim()}`;
      player.after(img);
    }
    img.src = path;
    img.hidden = !player.classList.contains("unplayable");
  }

  // Put the page's changing parts (api/pages/video.py VideoLive) in place.
  function apply(live) {
    const rows = document.getElementById("derivative-states");
    if (rows && live.html.states.trim()) rows.innerHTML = live.html.states;
    const state = document.getElementById("playback-state");
    if (state && player && player.dataset.stream === "hevc") {
      /* the HEVC version plays: the rendition for other browsers is not this page's */
    } else if (state) {
      const status = live.playback.status || "none";
      const percent = state.querySelector(".percent");
      const bar = state.querySelector("progress");
      const fresh = document.createElement("div");
      fresh.innerHTML = live.html.playback;
      if (state.innerHTML.trim() === fresh.innerHTML.trim()) {
        /* unchanged */
      } else if (state.dataset.renditionStatus === status && percent && bar
          && fresh.querySelector(".percent") && fresh.querySelector("progress")) {
        // only the progress moved: update it in place (no new announcement each time)
        percent.textContent = fresh.querySelector(".percent").textContent;
        bar.value = fresh.querySelector("progress").value;
      } else {
        state.replaceChildren(...fresh.childNodes);
        state.dataset.renditionStatus = status;
        state.hidden = !live.html.playback.trim();
      }
    }
    showPoster(live.poster_path);
    const seekbar = document.getElementById("seekbar");
    if (seekbar && live.storyboard_path) seekbar.dataset.storyboard = live.storyboard_path;
    const slot = document.getElementById("scenes-slot");
    if (slot) {
      const was = slot.querySelector("section");
      const now = document.createElement("div");
      now.innerHTML = live.html.scenes;
      const card = now.querySelector("section");
      const same = was && card && was.id === card.id
        && was.dataset.derivativeStatus === card.dataset.derivativeStatus;
      if (!same) {
        slot.replaceChildren(...(card ? [card] : []));
        if (card && card.id === "scenes" && videodrop.scenes) videodrop.scenes();
      }
    }
    const hevc = live.playback.hevc;
    if (player && player.dataset.stream !== "hevc" && hevc && hevc.path
        && decodesHevc(hevc.type)) {
      player.dataset.served = player.dataset.stream;
      switchStream(hevc.path, "hevc");
      sayHevc();
    } else if (player && !player.getAttribute("src") && player.dataset.src
        && !(hevc && hevc.status === "pending" && decodesHevc(hevc.type))) {
      // the HEVC version waited for will not come (failed, or no copy serves it): the
      // version every browser plays; that read asks for its transcode, followed below
      player.src = player.dataset.src;
      following = 3;
    } else if (player && player.dataset.stream !== "hevc" && live.playback.status === "ready"
        && live.playback.stream && live.playback.stream !== player.dataset.stream) {
      switchStream(live.stream_src, live.playback.stream);
    }
  }

  // Still uploading or processing: reload once the status changes (the whole page changes).
  // Ready with something still being made (a derivative, the rendition): follow it with
  // /videos/{id}/live.json, every 1 s at first, then less often (x1.5 up to 10 s; 15 s in
  // a hidden tab) while nothing changes, again every 1 s after a change; every 1 s while
  // the rendition is being made (the player switches within about a second of it being
  // ready). Stop when nothing is pending, after 30 minutes, or after 5 failed polls in a row.
  const status = article.dataset.status;
  if (status === "uploading" || status === "processing") {
    const timer = window.setInterval(async () => {
      try {
        const rec = await videodrop.api("GET", `/api/videos/${id}`);
        if (rec.status !== status) { window.clearInterval(timer); location.reload(); }
      } catch (e) { /* try again */ }
    }, 1500);
  } else if (article.dataset.watching === "true") {
    const until = Date.now() + 30 * 60 * 1000;
    let wait = 1000;
    let last = "";
    let failures = 0;
    const poll = async () => {
      let live = null;
      try {
        live = await videodrop.api("GET", `/videos/${id}/live.json`);
        failures = 0;
      } catch (e) {
        failures += 1;
      }
      const cap = document.hidden ? 15000 : 10000;
      if (live) {
        const seen = JSON.stringify([live.derivatives, live.playback]);
        if (seen !== last) { last = seen; wait = 1000; apply(live); } else wait = Math.min(wait * 1.5, cap);
        if (!live.pending && following <= 0) { article.dataset.watching = "false"; return; }
        following -= 1;
        if (live.playback.status === "pending" && !document.hidden) wait = 1000;
      } else wait = Math.min(wait * 1.5, cap);
      if (failures >= 5 || Date.now() > until) { article.dataset.watching = "false"; return; }
      window.setTimeout(poll, wait);
    };
    window.setTimeout(poll, wait);
  }
})();
