// The add page: pick or drop files, refuse what the server would refuse, upload each with
// a progress bar (XMLHttpRequest upload progress), then follow it to ready/failed.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const allowed = new Set(config.extensions);
  const form = document.getElementById("upload-form");
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const queue = document.getElementById("queue");
  const template = document.getElementById("queue-item");
  const start = document.getElementById("start");
  const clear = document.getElementById("clear");
  const toLibrary = document.getElementById("to-library");
  const sourceId = document.getElementById("source_id");
  const description = document.getElementById("description");
  const PARALLEL = 2;
  const items = [];
  let counter = 0;

  const size = (n) => {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
  };
  const extension = (name) => {
    const dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  };
  // as videodrop.media.name_from_filename: separators become spaces, except a single - or .
  // between digits (dates, times: "Front door 2026-11-30")
  const separator = (found, at, text) => (
    (found === "-" || found === ".") && /\d/.test(text[at - 1] || "") && /\d/.test(text[at + found.length] || "")
      ? found : " ");
  const defaultName = (name) => (name.replace(/\.[^.]*$/, "").replace(/[_\-.]+/g, separator)
    .replace(/\s+/g, " ").trim() || "video");

  function verdict(file) {
    const ext = extension(file.name);
    if (!allowed.has(ext)) return `Not a supported format (${ext ? "." + ext : "no extension"}); use ${config.extensions.join(", ")}.`;
    if (file.size > config.maxSize) return `Too large: ${size(file.size)}, the limit is ${size(config.maxSize)}.`;
    if (file.size === 0) return "The file is empty.";
    return null;
  }

  function setState(item, state, text) {
    item.state = state;
    item.el.className = `queue-item ${state}`;
    item.el.dataset.state = state;
    item.status.textContent = text;
  }

  function setProgress(item, loaded, total) {
    const pct = total ? Math.min(100, Math.floor((loaded / total) * 100)) : 0;
    item.progress.max = 100;
    item.progress.value = pct;
    item.progress.setAttribute("aria-valuenow", String(pct));
    item.percent.textContent = `${pct}%`;
  }

  function add(files) {
    for (const file of files) {
      counter += 1;
      const el = template.content.firstElementChild.cloneNode(true);
      const item = {
        file, el, state: "queued",
        status: el.querySelector(".qi-status"),
        progress: el.querySelector(".qi-progress"),
        percent: el.querySelector(".qi-percent"),
        name: el.querySelector(".qi-name"),
      };
      el.querySelector(".qi-file").textContent = file.name;
      el.querySelector(".qi-size").textContent = size(file.size);
      const nameId = `qi-name-${counter}`;
      item.name.id = nameId;
      item.name.placeholder = defaultName(file.name);
      el.querySelector(".qi-name-field label").setAttribute("for", nameId);
      el.querySelector(".qi-name-field label").textContent = `Name of ${file.name}`;
      item.progress.setAttribute("aria-label", `Upload progress of ${file.name}`);
      el.querySelector(".qi-remove").setAttribute("aria-label", `Remove ${file.name}`);
      el.querySelector(".qi-remove").addEventListener("click", () => {
        if (item.state === "uploading") return;
        items.splice(items.indexOf(item), 1);
        el.remove();
        refresh();
      });
      const refusal = verdict(file);
      if (refusal) setState(item, "refused", refusal);
      else setState(item, "queued", "Ready to upload");
      items.push(item);
      queue.appendChild(el);
    }
    refresh();
  }

  function refresh() {
    const queued = items.filter((i) => i.state === "queued").length;
    const busy = items.some((i) => i.state === "uploading");
    start.disabled = queued === 0 || busy;
    start.textContent = queued > 1 ? `Upload ${queued} files` : "Upload";
    clear.hidden = !items.some((i) => ["done", "refused", "error"].includes(i.state)) || busy;
    toLibrary.hidden = !items.some((i) => i.state === "done");
    const several = items.filter((i) => i.state === "queued").length > 1;
    sourceId.disabled = several;
  }

  function upload(item) {
    return new Promise((resolve) => {
      const data = new FormData();
      // text fields first: the server applies them as the row is created
      const name = item.name.value.trim();
      if (name) data.append("name", name);
      if (description.value.trim()) data.append("description", description.value.trim());
      if (!sourceId.disabled && sourceId.value.trim()) data.append("source_id", sourceId.value.trim());
      data.append("file", item.file, item.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/videos");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", videodrop.csrf());
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) setProgress(item, e.loaded, e.total);
        item.status.textContent = `Uploading… ${size(Math.min(e.loaded, item.file.size))} of ${size(item.file.size)}`;
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 202 && body) {
          setProgress(item, 1, 1);
          item.record = body;
          setState(item, "done", "");
          const link = document.createElement("a");
          link.href = `/videos/${body.id}`;
          link.textContent = body.name;
          const badge = document.createElement("span");
          badge.className = `badge badge-${body.status}`;
          badge.textContent = body.status;
          item.badge = badge;
          item.status.append("Uploaded: ", link, " ", badge);
          videodrop.announce(`${item.file.name} uploaded`);
          follow(item);
        } else {
          const why = body ? [body.title, body.description].filter(Boolean).join(": ") : `HTTP ${xhr.status}`;
          setState(item, "error", `Refused by the server — ${why}`);
          videodrop.announce(`${item.file.name} was refused: ${why}`);
          if (xhr.status === 401) window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
        }
        resolve();
      });
      for (const kind of ["error", "abort", "timeout"]) {
        xhr.addEventListener(kind, () => {
          setState(item, "error", `Upload failed (${kind === "error" ? "network error" : kind}); try again.`);
          resolve();
        });
      }
      setState(item, "uploading", "Starting…");
      item.name.disabled = true;
      xhr.send(data);
    });
  }

  // After the upload: follow the record until the prober is done with it.
  async function follow(item) {
    for (let i = 0; i < 600; i += 1) {
      await new Promise((r) => window.setTimeout(r, 1500));
      try {
        const rec = await videodrop.api("GET", `/api/videos/${item.record.id}`);
        item.badge.className = `badge badge-${rec.status}`;
        item.badge.textContent = rec.status;
        item.el.dataset.status = rec.status;
        if (rec.status === "ready" || rec.status === "failed") {
          if (rec.status === "failed") item.status.append(` — ${rec.processing_error || ""}`);
          return;
        }
      } catch (e) {
        if (String(e.message).startsWith("404")) return;
      }
    }
  }

  async function run() {
    const todo = items.filter((i) => i.state === "queued");
    refresh();
    start.disabled = true;
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const item = todo[next];
        next += 1;
        await upload(item);
        refresh();
        start.disabled = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
    refresh();
  }

  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  clear.addEventListener("click", () => {
    for (const item of items.filter((i) => ["done", "refused", "error"].includes(i.state))) {
      items.splice(items.indexOf(item), 1);
      item.el.remove();
    }
    refresh();
  });
  for (const kind of ["dragenter", "dragover"]) {
    zone.addEventListener(kind, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    zone.addEventListener(kind, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => { if (e.dataTransfer && e.dataTransfer.files.length) add(e.dataTransfer.files); });
  // a file dropped next to the zone must not make the browser navigate away
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  refresh();
})();
