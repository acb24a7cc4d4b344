// The video page: follow a video still processing, rotate/revoke/delete with confirmation.
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
  if (player && problem) {
    const still = document.getElementById("poster-still");  // the poster, when ready
    const cannotPlay = () => {
      problem.hidden = false;
      player.classList.add("unplayable");
      if (still) still.hidden = false;  // the seek bar's previews still browse the video
    };
    const noPicture = () => {  // the sound may still play: keep the player, say why it is dark
      if (player.dataset.hasVideo === "true" && player.videoWidth === 0) problem.hidden = false;
    };
    player.addEventListener("error", cannotPlay);
    player.addEventListener("loadedmetadata", noPicture);
    // the script is deferred: the element may have failed or loaded before it ran
    if (player.error) cannotPlay();
    else if (player.readyState >= 1) noPicture();
  }

  // Still uploading or processing: reload once the status changes.
  const status = article.dataset.status;
  if (status === "uploading" || status === "processing") {
    const timer = window.setInterval(async () => {
      try {
        const rec = await videodrop.api("GET", `/api/videos/${id}`);
        if (rec.status !== status) { window.clearInterval(timer); location.reload(); }
      } catch (e) { /* try again */ }
    }, 1500);
  }
})();
