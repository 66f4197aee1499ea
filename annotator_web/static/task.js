// Task page: mouse, touch and keyboard labelling of the grid. Plain JS, no framework.
(() => {
  "use strict";
  // Undo of the page just submitted: shown after a submit for as long as the server
  // allows it (data-left seconds), on the "all caught up" page too.
  const undo = document.getElementById("undo");
  let undoing = false;
  async function undoLast() {
    if (!undo || undo.hidden || undoing) return;
    undoing = true;
    undo.disabled = true;
    const res = await fetch("/api/undo", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    }).catch(() => null);
    if (res && res.ok) {
      const got = await res.json();
      const pin = undo.dataset.synset ? `&synset=${encodeURIComponent(undo.dataset.synset)}` : "";
      window.location.assign(`/task?undone=${got.undone}${pin}`);
      return;
    }
    const why = res ? (await res.json().catch(() => ({}))).detail : null;
    const box = document.getElementById("undo-error");
    box.textContent = typeof why === "string" ? why : "Undo failed: the server did not answer.";
    box.hidden = false;
    undo.hidden = true;
    undoing = false;
  }
  if (undo) {
    undo.addEventListener("click", undoLast);
    setTimeout(() => { undo.hidden = true; }, Number(undo.dataset.left) * 1000);
    document.addEventListener("keydown", (e) => {
      const key = e.key.toLowerCase();
      if (key !== "z" || e.altKey || e.shiftKey || e.target.matches("input, select, textarea")) return;
      if (document.querySelector("dialog[open]")) return;
      e.preventDefault();
      undoLast();
    });
  }

  const form = document.getElementById("task");
  if (!form) { document.body.dataset.ready = "1"; return; }
  const grid = form.querySelector(".grid");
  const tiles = Array.from(form.querySelectorAll(".tile"));
  const viewer = document.getElementById("viewer");
  const started = performance.now();
  let current = 0;
  let submitting = false;

  const yes = (t) => t.querySelector("input.yes");
  const unsure = (t) => t.querySelector("input.unsure");

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
    if (viewer.open) {
      if (e.key === " " || e.key === "x") { e.preventDefault(); toggle(tiles[current]); viewer.close(); }
      else if (e.key === "u") { skip(tiles[current]); viewer.close(); }
      return; // Esc closes the dialog natively
    }
    if (e.target.matches("input, select, textarea")) return;
    const cols = columns();
    const moves = { ArrowRight: 1, l: 1, ArrowLeft: -1, h: -1, ArrowDown: cols, j: cols, ArrowUp: -cols, k: -cols };
    if (e.key in moves) { e.preventDefault(); focus(current + moves[e.key]); }
    else if (e.key === " " || e.key === "x") { e.preventDefault(); toggle(tiles[current]); }
    else if (e.key === "u") { skip(tiles[current]); }
    else if (e.key === "v") { openViewer(tiles[current]); }
    else if (e.key === "a") { tiles.forEach((t) => { yes(t).checked = !unsure(t).checked; render(t); }); }
    else if (e.key === "n") { tiles.forEach((t) => { yes(t).checked = false; render(t); }); }
    else if (e.key === "Enter") { e.preventDefault(); form.requestSubmit(); }
  });

  form.addEventListener("submit", (e) => {
    if (submitting) { e.preventDefault(); return; }
    submitting = true;
    form.elements.elapsed_ms.value = Math.round(performance.now() - started);
    document.getElementById("submit").disabled = true;
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
  tiles.forEach(render);
  focus(0);
  document.body.dataset.ready = "1";
})();
