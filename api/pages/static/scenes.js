// The video page's scenes (templates/_scenes.html): the activity per second as a strip
// and the scenes with their thumbnails; a click on either seeks the player. Runs when the
// page loads, and again as videodrop.scenes() when video.js puts a card made ready while
// the page was open in place.
"use strict";

videodrop.scenes = () => {
  const card = document.getElementById("scenes");
  if (!card) return;
  const player = document.getElementById("player");
  const summary = document.getElementById("scenes-summary");
  const strip = document.getElementById("activity-strip");
  const list = document.getElementById("scene-list");

  // m:ss, or m:ss.t with tenths of a second (a short scene's ends differ there)
  const clock = (seconds, tenths = false) => {
    const scale = tenths ? 10 : 1;
    const units = Math.floor(seconds * scale + 1e-6);
    const s = Math.floor(units / scale);
    const text = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    return tenths ? `${text}.${units % 10}` : text;
  };

  // "4 · 0:07.2–0:07.6 · 9 frames": tenths under 10 s, the frames too under 1 s
  function span(scene) {
    const length = scene.end - scene.start;
    const tenths = length < 10;
    const frames = scene.end_frame - scene.start_frame;
    return `${scene.index + 1} · ${clock(scene.start, tenths)}–${clock(scene.end, tenths)}`
      + (length < 1 ? ` · ${frames} frame${frames === 1 ? "" : "s"}` : "");
  }

  function seek(seconds) {
    if (!player) return;
    player.currentTime = seconds;
    player.focus();
  }

  function drawActivity(view) {
    const values = view.activity;
    const width = strip.clientWidth || 600;
    const height = strip.clientHeight || 36;
    const ratio = window.devicePixelRatio || 1;
    strip.width = Math.round(width * ratio);
    strip.height = Math.round(height * ratio);
    const ctx = strip.getContext("2d");
    ctx.scale(ratio, ratio);
    const style = getComputedStyle(document.documentElement);
    const top = Math.sqrt(Math.max(...values, 1));  // a square-root scale: small motion shows
    const step = width / Math.max(values.length, 1);
    ctx.fillStyle = style.getPropertyValue("--accent").trim() || "#4f46e5";
    values.forEach((value, second) => {
      const bar = Math.max(1, (Math.sqrt(value) / top) * (height - 2));
      ctx.fillRect(second * step, height - bar, Math.max(1, step - 0.5), bar);
    });
    ctx.fillStyle = style.getPropertyValue("--muted").trim() || "#5d6481";
    view.scenes.slice(1).forEach((scene) => {
      ctx.fillRect((scene.start / Math.max(values.length, 1e-9)) * width, 0, 1, height);
    });
    strip.onclick = (event) => {
      const box = strip.getBoundingClientRect();
      seek(((event.clientX - box.left) / box.width) * values.length);
    };
  }

  function listScenes(view) {
    list.replaceChildren(...view.scenes.map((scene) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.start = String(scene.start);
      button.setAttribute("aria-label", `Scene ${scene.index + 1}, from ${clock(scene.start)}`);
      const thumb = document.createElement("div");
      thumb.className = "scene-thumb";
      const t = scene.thumbnail;
      // the box is the tile's size whatever the stylesheet says (it may come later)
      Object.assign(thumb.style, {
        width: `${t.w}px`, height: `${t.h}px`, backgroundImage: `url("${t.url}")`,
        backgroundPosition: `-${t.x}px -${t.y}px`, backgroundRepeat: "no-repeat",
      });
      const label = document.createElement("span");
      label.className = "scene-label";
      label.textContent = span(scene);
      button.append(thumb, label);
      button.addEventListener("click", () => seek(scene.start));
      item.append(button);
      return item;
    }));
  }

  function follow(view) {
    if (!player) return;
    const buttons = list.querySelectorAll("button");
    player.addEventListener("timeupdate", () => {
      const now = player.currentTime;
      view.scenes.forEach((scene, i) => {
        const here = now >= scene.start && now < scene.end;
        buttons[i].setAttribute("aria-current", here ? "true" : "false");
      });
    });
  }

  fetch(card.dataset.scenesUrl, { credentials: "same-origin" })
    .then((resp) => (resp.ok ? resp.json() : Promise.reject(new Error(`HTTP ${resp.status}`))))
    .then((view) => {
      const n = view.count;
      summary.textContent = `${n} scene${n === 1 ? "" : "s"}; the strip shows how much`
        + " the picture changes each second. Click either to seek.";
      drawActivity(view);
      listScenes(view);
      follow(view);
    })
    .catch((error) => { summary.textContent = `The scenes could not be loaded (${error.message}).`; });
};
videodrop.scenes();
