// Shared by every page: the CSRF token, calls to the API, copy buttons, local times.
"use strict";

const videodrop = (() => {
  const csrf = () => document.body.dataset.csrf || "";

  function announce(text) {
    const el = document.getElementById("announcer");
    if (!el) return;
    el.textContent = "";
    window.setTimeout(() => { el.textContent = text; }, 50);
  }

  // fetch() against our own API with the session cookie and the CSRF token.
  async function api(method, url, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": csrf() };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    if (resp.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("logged out");
    }
    let data = null;
    if (resp.status !== 204) {
      try { data = await resp.json(); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      const why = data && (data.description || data.title);
      throw new Error(why ? `${resp.status}: ${why}` : `HTTP ${resp.status}`);
    }
    return data;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  function localTimes(root) {
    const short = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    // table cells: this year's dates without the year (one short line per row)
    const thisYear = new Intl.DateTimeFormat(undefined, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    const precise = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      if (el.dataset.local) continue;
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      el.title = el.textContent;
      const inTable = el.closest("td") && when.getFullYear() === new Date().getFullYear();
      el.textContent = (el.closest(".facts") ? precise : inTable ? thisYear : short).format(when);
      el.dataset.local = "1";
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = "value" in source && source.tagName === "INPUT" ? source.value : source.textContent;
    const ok = await copyText(text);
    button.dataset.copied = ok ? text : "";
    button.classList.toggle("copied", ok);
    const label = button.textContent;
    button.textContent = ok ? "Copied ✓" : "Copy failed";
    announce(ok ? "Copied to the clipboard" : "Could not copy; select the text and copy it");
    window.setTimeout(() => { button.textContent = label === "Copied ✓" ? "Copy" : label; button.classList.remove("copied"); }, 2000);
  });

  document.addEventListener("DOMContentLoaded", () => localTimes(document));

  return { api, announce, copyText, csrf, localTimes };
})();
