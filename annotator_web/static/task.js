// Task page: mouse, touch and keyboard labelling of the grid. Plain JS, no framework.
(() => {
  "use strict";
  const status = document.getElementById("status");
  const pin = status.dataset.synset ? `?synset=${encodeURIComponent(status.dataset.synset)}` : "";
  const problem = document.getElementById("problem");
  // Shown over the submit bar (where the annotator is looking when a submit fails);
  // the "Log in again" link only when the session ended.
  function say(message, login = false) {
    if (!problem) return false;
    problem.querySelector("span").textContent = message;
    problem.querySelector("a").hidden = !login;
    problem.hidden = false;
    return true;
  }
  const ENDED = "Your session ended; log in again: your answers on this page are kept.";

  // Undo of the page just submitted: shown after a submit for as long as the server
  // allows it (data-left seconds), on the "all caught up" page too. Z asks the server
  // even without the button (after a reload, say): it knows whether the window is open.
  const undo = document.getElementById("undo");
  const undoBox = document.getElementById("undo-error");
  let undoing = false, expired = false;
  function undoSays(message) { undoBox.textContent = message; undoBox.hidden = false; }
  async function undoLast() {
    if (undoing) return;
    if (expired) {
      undoSays(`Too late to undo: a page can be undone for ${status.dataset.undoSeconds} s after it is sent.`);
      return;
    }
    undoing = true;
    if (undo) undo.disabled = true;
    const res = await fetch("/api/undo", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    }).catch(() => null);
    if (res && res.ok) {
      window.location.assign(`/task${pin}`);  // the server's flash says how many
      return;
    }
    const why = res ? (await res.json().catch(() => ({}))).detail : null;
    if (res && res.status === 401) { if (!say(ENDED, true)) undoSays(ENDED); }
    else undoSays(typeof why === "string" ? why : "Undo failed: the server did not answer.");
    if (undo) undo.hidden = true;
    undoing = false;
  }
  if (undo) {
    undo.addEventListener("click", undoLast);
    setTimeout(() => { undo.hidden = true; expired = true; }, Number(undo.dataset.left) * 1000);
  }
  document.addEventListener("keydown", (e) => {
    // Caps Lock and Shift give "Z": the same key. Ctrl/Cmd+Z stays the browser's.
    if (e.key.toLowerCase() !== "z" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.matches("input, select, textarea") || document.querySelector("dialog[open]")) return;
    e.preventDefault();
    undoLast();
  });

  const form = document.getElementById("task");
  if (!form) { document.body.dataset.ready = "1"; return; }
  const grid = form.querySelector(".grid");
  const tiles = Array.from(form.querySelectorAll(".tile"));
  const viewer = document.getElementById("viewer");
  const started = performance.now();
  let current = 0;
  let submitting = false;
  let ready = false;  // set once the page's answers are restored: render() keeps them

  const yes = (t) => t.querySelector("input.yes");
  const unsure = (t) => t.querySelector("input.unsure");

  // The page's answers are kept in this tab (sessionStorage) until the server has them:
  // a session that ends under a page, a lost connection or a reload must not cost the
  // annotator their answers. "page" is the page being answered; "sent" the last page
  // the server took, for when an undo brings it back. Either is restored only onto
  // the same items for the same account, and never sent without the annotator's submit.
  const STORE = "synset-task:";
  const ids = tiles.map((t) => t.dataset.id).sort().join(",");
  const answers = () => ({
    user: status.dataset.user, ids,
    yes: tiles.filter((t) => yes(t).checked).map((t) => t.dataset.id),
    unsure: tiles.filter((t) => unsure(t).checked).map((t) => t.dataset.id),
  });
  function keep(slot, value) {
    try {
      if (value) sessionStorage.setItem(STORE + slot, JSON.stringify(value));
      else sessionStorage.removeItem(STORE + slot);
    } catch { /* storage off or full: the page still works, without the safety net */ }
  }
  function kept(slot) {
    try {
      const got = JSON.parse(sessionStorage.getItem(STORE + slot));
      return got && got.user === status.dataset.user && got.ids === ids ? got : null;
    } catch { return null; }
  }
  // Which slot answered the page ("page", "sent") or null. After an undo the server
  // has already marked the "yes" answers; "sent" adds the "unsure" ones it does not keep.
  function restore() {
    const slot = kept("page") ? "page" : kept("sent") ? "sent" : null;
    if (!slot) return null;
    const got = kept(slot);
    const [y, u] = [new Set(got.yes), new Set(got.unsure)];
    tiles.forEach((t) => { yes(t).checked = y.has(t.dataset.id); unsure(t).checked = u.has(t.dataset.id); });
    return slot;
  }

  function render(t) {
    t.classList.toggle("selected", yes(t).checked);
    t.classList.toggle("unsure", unsure(t).checked);
    t.setAttribute("aria-selected", String(yes(t).checked));
    const n = tiles.length;
    const y = tiles.filter((x) => yes(x).checked).length;
    const u = tiles.filter((x) => unsure(x).checked).length;
    document.getElementById("n-yes").textContent = y;
    document.getElementById("n-unsure").textContent = u;
    document.getElementById("n-no").textContent = n - y - u;
    if (ready) keep("page", answers());
  }
  function toggle(t) { yes(t).checked = !yes(t).checked; if (yes(t).checked) unsure(t).checked = false; render(t); }
  function skip(t) { unsure(t).checked = !unsure(t).checked; if (unsure(t).checked) yes(t).checked = false; render(t); }
  function focus(i) {
    current = Math.max(0, Math.min(tiles.length - 1, i));
    tiles.forEach((t, k) => { t.tabIndex = k === current ? 0 : -1; t.classList.toggle("focus", k === current); });
    tiles[current].focus({ preventScroll: false });
    tiles[current].scrollIntoView({ block: "nearest" });
  }
  function columns() {
    const top = tiles[0].offsetTop;
    const n = tiles.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? tiles.length : n;
  }
  function openViewer(t) {
    const img = viewer.querySelector("img");
    img.src = `/img/${t.querySelector("img").src.split("/img/")[1].split("/")[0]}/large`;
    viewer.querySelector("select").value = "";
    viewer.showModal();
  }
  async function report(t, reason) {
    const res = await fetch("/api/reports", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ candidate_id: Number(t.dataset.id), reason }),
    });
    if (res.ok) {
      yes(t).checked = false; unsure(t).checked = true; render(t);
      t.querySelector(".badge-unsure").textContent = "reported";
      viewer.close();
    }
  }

  tiles.forEach((t, i) => {
    t.addEventListener("click", (e) => {
      focus(i);
      if (e.target.closest(".zoom")) openViewer(t);
      else if (e.target.closest(".skip")) skip(t);
      else toggle(t);
    });
    t.addEventListener("dblclick", (e) => { e.preventDefault(); openViewer(t); });
  });

  viewer.addEventListener("click", (e) => {
    const act = e.target.closest("[data-act]")?.dataset.act;
    if (act === "toggle") { toggle(tiles[current]); viewer.close(); }
    else if (act === "unsure") { skip(tiles[current]); viewer.close(); }
    else if (act === "close" || e.target === viewer) viewer.close();
  });
  viewer.querySelector("select").addEventListener("change", (e) => {
    if (e.target.value) report(tiles[current], e.target.value);
  });
  viewer.addEventListener("close", () => tiles[current].focus());

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    // Letters in either case: the hint bar shows U, V, A, N, and Caps Lock or Shift
    // must not turn the shortcuts off.
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (viewer.open) {
      if (key === " " || key === "x") { e.preventDefault(); toggle(tiles[current]); viewer.close(); }
      else if (key === "u") { skip(tiles[current]); viewer.close(); }
      return; // Esc closes the dialog natively
    }
    if (e.target.matches("input, select, textarea")) return;
    const cols = columns();
    const moves = { ArrowRight: 1, l: 1, ArrowLeft: -1, h: -1, ArrowDown: cols, j: cols, ArrowUp: -cols, k: -cols };
    if (key in moves) { e.preventDefault(); focus(current + moves[key]); }
    else if (key === " " || key === "x") { e.preventDefault(); toggle(tiles[current]); }
    else if (key === "u") { skip(tiles[current]); }
    else if (key === "v") { openViewer(tiles[current]); }
    else if (key === "a") { tiles.forEach((t) => { yes(t).checked = !unsure(t).checked; render(t); }); }
    else if (key === "n") { tiles.forEach((t) => { yes(t).checked = false; render(t); }); }
    else if (key === "Enter") { e.preventDefault(); form.requestSubmit(); }
  });

  // Sent with fetch, so that a refusal is read and said here, the answers still on
  // screen: an ended session used to follow the redirect to the login form in silence.
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (submitting) return;
    submitting = true;
    form.elements.elapsed_ms.value = Math.round(performance.now() - started);
    const button = document.getElementById("submit");
    button.disabled = true;
    problem.hidden = true;
    const sending = answers();
    const res = await fetch(form.action, {
      method: "POST", headers: { Accept: "application/json" },
      body: new URLSearchParams(new FormData(form)),
    }).catch(() => null);
    if (res && res.ok) {
      const got = await res.json();
      keep("sent", sending);
      keep("page", null);
      window.location.assign(got.next);
      return;
    }
    const why = res ? (await res.json().catch(() => ({}))).detail : null;
    if (res && res.status === 401) say(ENDED, true);
    else if (typeof why === "string") say(`Not sent: ${why}`);
    else say("Not sent: the server did not answer. Your answers on this page are kept; try again.");
    submitting = false;
    button.disabled = false;
  });

  // Fit a whole page of tiles in the window where they stay big enough to judge:
  // the column count that gives the largest square tile for the width and the
  // height left under the header and above the submit bar. Narrow or short windows
  // (phones) keep the stylesheet's grid and scroll down instead.
  const MIN_TILE = 120, MAX_TILE = 300;
  function fit() {
    grid.classList.remove("fitted");
    if (!window.matchMedia("(min-width: 701px)").matches) return;
    const bar = form.querySelector(".submitbar");
    const width = grid.clientWidth;
    const top = grid.getBoundingClientRect().top + window.scrollY;
    const height = window.innerHeight - top - bar.offsetHeight - 14;
    const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
    const n = tiles.length;
    let best = 0, cols = 0;
    for (let c = 1; c <= n; c++) {
      const r = Math.ceil(n / c);
      const side = Math.floor(Math.min((width - (c - 1) * gap) / c, (height - (r - 1) * gap) / r));
      if (side > best) { best = side; cols = c; }
    }
    if (best < MIN_TILE) return;
    grid.style.setProperty("--cols", cols);
    grid.style.setProperty("--tile", `${Math.min(best, MAX_TILE)}px`);
    grid.classList.add("fitted");
  }
  let pending = 0;
  window.addEventListener("resize", () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(fit); });

  fit();
  const restored = restore();
  ready = true;
  tiles.forEach(render);
  document.getElementById("restored").hidden = restored !== "page";  // "sent": the undo flash says it
  focus(0);
  document.body.dataset.ready = "1";
})();
