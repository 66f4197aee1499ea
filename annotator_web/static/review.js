// Review grid: keyboard-first judging. Arrows move, Y / N judge the focused item (sent at
// once to POST /api/review, the session cookie authenticates), U skips, V opens the
// large view, B hands the item back to the crowd. Focus moves on after each judgement,
// so a page of 24 is 24 key presses. Without a keyboard (a phone hides the key hints),
// each tile's Yes / No buttons focus their tile and judge it as Y / N do.
(() => {
  "use strict";
  const grid = document.querySelector(".review-grid");
  if (!grid) return;
  const tiles = Array.from(grid.querySelectorAll(".rtile"));
  const viewer = document.getElementById("viewer");
  const error = document.getElementById("review-error");
  const judged = document.getElementById("n-judged");
  let at = 0;
  let sent = 0;

  function focus(i) {
    if (!tiles.length) return;
    at = Math.max(0, Math.min(tiles.length - 1, i));
    tiles.forEach((t, k) => { t.tabIndex = k === at ? 0 : -1; t.classList.toggle("focus", k === at); });
    tiles[at].focus({ preventScroll: false });
  }

  function columns() {
    const top = tiles[0].offsetTop;
    const n = tiles.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? tiles.length : n;
  }

  // Focus moves on at once (a fast curator types ahead of the network); the judgement
  // of the tile it left is sent meanwhile, and its tile shows the verdict once saved.
  async function judge(label) {
    const tile = tiles[at];
    const id = Number(tile.dataset.id);
    if (viewer.open) viewer.close();
    focus(at + 1);
    tile.classList.add("saving");
    try {
      const r = await fetch("/api/review", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ decisions: [{ candidate_id: id, label }] }),
      });
      if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || r.statusText);
    } catch (e) {
      tile.classList.remove("saving");
      error.textContent = `Not saved (item ${id}): ${e.message}`;
      error.hidden = false;
      return;
    }
    tile.classList.remove("saving", "judged-yes", "judged-no", "handed-back");
    tile.classList.add(label === null ? "handed-back" : label ? "judged-yes" : "judged-no");
    tile.querySelector(".verdict").textContent =
      label === null ? "handed back" : label ? "expert: yes" : "expert: no";
    const shown = tile.querySelector(".decision");
    if (shown && label !== null) {
      shown.textContent = label ? "accepted (expert)" : "rejected (expert)";
      shown.className = `decision d-${label ? "accepted" : "rejected"}`;
    }
    judged.textContent = String(++sent);
  }

  function large() {
    viewer.querySelector("img").src = tiles[at].dataset.large;
    viewer.showModal();
  }

  // A button's data-act, in a tile or the large view.
  function act(e) {
    const name = e.target.closest("[data-act]")?.dataset.act;
    if (name === "yes") judge(true);
    else if (name === "no") judge(false);
    else if (name === "close") viewer.close();
  }

  tiles.forEach((t, k) => {
    t.addEventListener("click", (e) => { focus(k); act(e); });
    // Two quick taps on a tile's button are two judgements, not a large view.
    t.addEventListener("dblclick", (e) => { if (!e.target.closest("button")) { focus(k); large(); } });
  });
  viewer.addEventListener("click", act);

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.toLowerCase();
    const moves = { arrowleft: -1, arrowright: 1, arrowup: -columns(), arrowdown: columns() };
    if (key in moves && !viewer.open) focus(at + moves[key]);
    else if (key === "y") judge(true);
    else if (key === "n") judge(false);
    else if (key === "b") judge(null);
    else if (key === "u") { if (viewer.open) viewer.close(); focus(at + 1); }
    else if (key === "v") { if (viewer.open) viewer.close(); else large(); }
    else return;
    e.preventDefault();
  });
  focus(0);
})();
