/* lbcloud pages: sortable tables, the live submission view, the log follower, operator refresh.
   Plain JavaScript, no dependencies; every page works without it (minus live updates). */
"use strict";

/* ---------------------------------------------------------------- sortable tables */
function cellValue(row, index, type) {
  const cell = row.children[index];
  if (!cell) return type === "num" ? -Infinity : "";
  const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  if (type === "num") {
    const n = parseFloat(raw);
    return Number.isNaN(n) ? -Infinity : n;
  }
  return raw.toLowerCase();
}

function sortTable(table, index, direction) {
  const th = table.tHead.rows[0].cells[index];
  const type = th.dataset.type || "text";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.children.length > 1);
  rows.sort((a, b) => {
    const x = cellValue(a, index, type);
    const y = cellValue(b, index, type);
    if (x < y) return direction === "ascending" ? -1 : 1;
    if (x > y) return direction === "ascending" ? 1 : -1;
    return 0;
  });
  rows.forEach((r) => body.appendChild(r));
  Array.from(table.tHead.rows[0].cells).forEach((c) => c.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", direction);
  table.dataset.sortIndex = String(index);
  table.dataset.sortDirection = direction;
}

function reapplySort(table) {
  if (table && table.dataset.sortIndex !== undefined) {
    sortTable(table, Number(table.dataset.sortIndex), table.dataset.sortDirection);
  }
}

/* Each sortable header gets a real button: reachable with Tab, sorted with Enter or Space, or a click. */
function initSortable(root) {
  root.querySelectorAll("table.sortable").forEach((table) => {
    if (!table.tHead) return;
    Array.from(table.tHead.rows[0].cells).forEach((th, index) => {
      if (!th.classList.contains("sortable") || th.querySelector("button.sort")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", () => {
        const current = th.getAttribute("aria-sort");
        const numeric = th.dataset.type === "num";
        const next = current ? (current === "ascending" ? "descending" : "ascending") : (numeric ? "descending" : "ascending");
        sortTable(table, index, next);
      });
    });
  });
}

/* ---------------------------------------------------------------- helpers */

async function postJSON(url, payload) {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(payload || {}) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || ("request failed: " + response.status));
  return body;
}

/* ---------------------------------------------------------------- log viewer */
class LogViewer {
  constructor(submissionId) {
    this.submissionId = submissionId;
    this.select = document.getElementById("log-attempt");
    this.text = document.getElementById("log-text");
    this.status = document.getElementById("log-status");
    this.follow = document.getElementById("log-follow");
    this.buttons = Array.from(document.querySelectorAll(".logbar [data-stream]"));
    this.stream = "agent";
    this.attemptId = null;
    this.userChose = false;
    this.source = null;
    this.buttons.forEach((b) => b.addEventListener("click", () => { this.stream = b.dataset.stream; this.open(); }));
    this.select.addEventListener("change", () => { this.userChose = true; this.attemptId = Number(this.select.value); this.open(); });
  }

  /* Keep the attempt list current; follow the newest live attempt unless the user picked one. */
  update(attempts) {
    const options = attempts.slice().reverse();
    const wanted = options.map((a) => `${a.id}:${a.state.word}`).join(",");
    if (this.select.dataset.ids !== wanted) {
      this.select.innerHTML = "";
      options.forEach((a) => {
        const o = document.createElement("option");
        o.value = String(a.id);
        o.textContent = `attempt ${a.id} · ${a.route} #${a.number} · ${a.state.word}`;
        this.select.appendChild(o);
      });
      this.select.dataset.ids = wanted;
    }
    if (!options.length) return;
    if (!this.userChose) {
      const live = options.find((a) => a.status !== "ended");
      const pick = (live || options[0]).id;
      if (pick !== this.attemptId) { this.attemptId = pick; this.open(); }
    }
    this.select.value = String(this.attemptId);
  }

  show(attemptId) { this.userChose = true; this.attemptId = attemptId; this.select.value = String(attemptId); this.open(); this.text.scrollIntoView({ block: "nearest" }); }

  open() {
    if (this.source) { this.source.close(); this.source = null; }
    this.buttons.forEach((b) => b.classList.toggle("active", b.dataset.stream === this.stream));
    if (this.attemptId === null) return;
    this.text.textContent = "";
    this.status.textContent = `following attempt ${this.attemptId} · ${this.stream}…`;
    const url = `/api/v1/submissions/${this.submissionId}/attempts/${this.attemptId}/logs/${this.stream}?follow=true`;
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("log", (ev) => {
      const chunk = JSON.parse(ev.data);
      this.text.textContent += chunk.text;
      const max = 400000;
      if (this.text.textContent.length > max) this.text.textContent = this.text.textContent.slice(-max);
      if (this.follow.checked) this.text.scrollTop = this.text.scrollHeight;
      this.status.textContent = `attempt ${this.attemptId} · ${this.stream} · ${chunk.next_offset} bytes · live`;
    });
    source.addEventListener("end", () => {
      source.close();
      this.status.textContent = `attempt ${this.attemptId} · ${this.stream} · ended` + (this.text.textContent ? "" : " (empty log)");
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) this.status.textContent = "log stream closed";
    };
  }
}

/* ---------------------------------------------------------------- live submission page */
function initSubmissionPage() {
  const body = document.body;
  const id = body.dataset.submissionId;
  const dot = document.getElementById("live-dot");
  const badge = document.getElementById("status-badge");
  const events = document.getElementById("events");
  const routesTable = document.getElementById("routes-table");
  const viewer = new LogViewer(id);
  const initial = JSON.parse(document.getElementById("initial-progress").textContent);
  viewer.update(initial.attempts);

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-show-logs]");
    if (button) viewer.show(Number(button.dataset.showLogs));
  });

  const cancel = document.getElementById("cancel-button");
  if (cancel) {
    cancel.addEventListener("click", async () => {
      if (!window.confirm(`Cancel submission #${id}? Route records already done are kept.`)) return;
      cancel.disabled = true;
      try {
        await postJSON(`/api/v1/submissions/${id}/cancel`);
        const response = await fetch(`/api/v1/submissions/${id}`, { credentials: "same-origin" });
        if (response.ok) setStatus(await response.json());
      } catch (err) {
        cancel.disabled = false;
        window.alert(err.message);
      }
    });
  }
  document.querySelectorAll("[data-choice]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        await postJSON(`/api/v1/submissions/${id}/leaderboard`, { choice: button.dataset.choice });
        window.location.href = `/leaderboard/${body.dataset.track}`;
      } catch (err) { window.alert(err.message); }
    });
  });
  const resume = document.getElementById("resume-button");
  if (resume) {
    resume.addEventListener("click", async () => {
      resume.disabled = true;
      try { await postJSON(`/api/v1/submissions/${id}/resume`); window.location.reload(); }
      catch (err) { resume.disabled = false; window.alert(err.message); }
    });
  }

  /* The badge, title and sentence come from the server's one state table (progress.state). */
  function setStatus(p) {
    const state = p.state;
    badge.className = `badge tone-${state.tone}`;
    badge.dataset.status = p.submission.status;
    badge.textContent = state.word;
    document.title = `Submission #${id} (${state.word}) · lbcloud`;
    if (cancel && state.terminal) cancel.hidden = true;
    document.getElementById("state-detail").textContent = state.detail;
  }

  function applyProgress(data) {
    const html = data.html || {};
    for (const [region, markup] of Object.entries(html)) {
      const el = document.querySelector(`[data-region="${region}"]`);
      if (el && el.innerHTML !== markup) el.innerHTML = markup;
    }
    reapplySort(routesTable);
    const p = data.progress;
    setStatus(p);
    viewer.update(p.attempts);
    body.dataset.updates = String(Number(body.dataset.updates || "0") + 1);
  }

  let source = null;
  function connect() {
    source = new EventSource(`/api/v1/submissions/${id}/live`);
    source.onopen = () => dot.classList.add("on");
    source.addEventListener("progress", (ev) => applyProgress(JSON.parse(ev.data)));
    source.addEventListener("event", (ev) => {
      const e = JSON.parse(ev.data);
      const empty = document.getElementById("no-events");
      if (empty) empty.remove();
      const li = document.createElement("li");
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = new Date(e.at).toISOString().slice(11, 19);
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.kind;
      li.append(when, kind, document.createTextNode(e.message));
      events.prepend(li);
    });
    source.addEventListener("end", () => { source.close(); dot.classList.remove("on"); body.dataset.ended = "true"; });
    source.onerror = () => { dot.classList.remove("on"); };
  }
  connect();
}

/* ---------------------------------------------------------------- operator page */
function initOperatorPage() {
  const main = document.getElementById("operator-main");
  const seconds = Number(main.dataset.refresh || "5");
  setInterval(async () => {
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("operator-main");
      if (fresh) { main.innerHTML = fresh.innerHTML; initSortable(main); }
    } catch (err) { /* keep the last view; try again on the next tick */ }
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  initSortable(document);
  if (document.body.dataset.page === "submission") initSubmissionPage();
  if (document.body.dataset.page === "operator") initOperatorPage();
});
