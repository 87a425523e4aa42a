// The state diagram on the task and run pages (the SVG comes from engine/diagram, rendered
// by the server): zoom, pan and fit for big definitions, and the overlays dashboard.js asks
// for: live run counts per state (task page) and a run's path and current state (run page).
// Every overlay says itself in text (badges, aria-labels), never by colour alone.
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";

  function nodes(box) { return Array.prototype.slice.call(box.querySelectorAll("g.node[data-state]")); }
  function edges(box) { return Array.prototype.slice.call(box.querySelectorAll("g.edge[data-from]")); }
  function nodeOf(box, state) { return nodes(box).find(function (n) { return n.dataset.state === state; }); }

  // ------------------------------------------------------------------ zoom, pan, fit

  function setup(box) {
    var svg = box.querySelector("svg.diagram");
    var view = box.querySelector(".diagram-view");
    if (!svg || !view) return;
    var full = svg.getAttribute("viewBox").split(" ").map(Number);
    var current = full.slice();
    function apply() { svg.setAttribute("viewBox", current.map(function (v) { return v.toFixed(1); }).join(" ")); }
    function zoom(factor, cx, cy) {
      var w = Math.min(full[2] * 4, Math.max(80, current[2] / factor));
      var h = current[3] * (w / current[2]);
      cx = cx === undefined ? current[0] + current[2] / 2 : cx;
      cy = cy === undefined ? current[1] + current[3] / 2 : cy;
      current = [cx - (cx - current[0]) * (w / current[2]), cy - (cy - current[1]) * (h / current[3]), w, h];
      apply();
    }
    // Fit when that keeps the text readable (shrunk at most READABLE times); a bigger
    // definition opens at its natural size on its start state, and Fit shows all of it.
    var READABLE = 2.5;
    function initial() {
      var rect = view.getBoundingClientRect();
      var start = svg.querySelector("g.node.start rect.box");
      if (!rect.width || !start || Math.max(full[2] / rect.width, full[3] / rect.height) <= READABLE) {
        fit();
        return;
      }
      var cx = +start.getAttribute("x") + +start.getAttribute("width") / 2;
      current = [cx - rect.width / 2, full[1], rect.width, rect.height];
      apply();
    }
    function pan(dx, dy) { current[0] += dx; current[1] += dy; apply(); }
    // The whole diagram, never enlarged beyond its natural size (a 3-state task stays
    // readable, a 50-state one shrinks to fit).
    function fit() {
      var rect = view.getBoundingClientRect();
      if (!rect.width || !rect.height) { current = full.slice(); apply(); return; }
      var scale = Math.max(full[2] / rect.width, full[3] / rect.height, 1);
      var w = rect.width * scale, h = rect.height * scale;
      current = [full[0] - (w - full[2]) / 2, full[1], w, h];
      apply();
    }
    function toDiagram(event) {
      var rect = svg.getBoundingClientRect();
      var scale = Math.max(current[2] / rect.width, current[3] / rect.height);
      return {scale: scale, x: current[0] + (event.clientX - rect.left) * scale,
              y: current[1] + (event.clientY - rect.top) * scale};
    }
    box.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var how = button.dataset.zoom;
        if (how === "in") zoom(1.25); else if (how === "out") zoom(0.8); else fit();
      });
    });
    view.addEventListener("wheel", function (event) {
      if (!event.ctrlKey && !event.metaKey) return; // plain wheel scrolls the page
      event.preventDefault();
      var at = toDiagram(event);
      zoom(event.deltaY < 0 ? 1.15 : 1 / 1.15, at.x, at.y);
    }, {passive: false});
    var drag = null;
    view.addEventListener("pointerdown", function (event) {
      drag = {x: event.clientX, y: event.clientY, scale: toDiagram(event).scale};
      view.setPointerCapture(event.pointerId);
    });
    view.addEventListener("pointermove", function (event) {
      if (!drag) return;
      pan((drag.x - event.clientX) * drag.scale, (drag.y - event.clientY) * drag.scale);
      drag.x = event.clientX; drag.y = event.clientY;
    });
    view.addEventListener("pointerup", function () { drag = null; });
    view.addEventListener("keydown", function (event) {
      var step = current[2] / 10;
      var keys = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
      if (event.target !== view && !event.key.startsWith("Arrow")) return;
      if (keys[event.key]) { pan(keys[event.key][0], keys[event.key][1]); event.preventDefault(); }
      else if (event.key === "+" || event.key === "=") zoom(1.25);
      else if (event.key === "-") zoom(0.8);
      else if (event.key === "0") fit();
    });
    // A node reached with Tab is brought into view.
    svg.addEventListener("focusin", function (event) {
      var node = event.target.closest && event.target.closest("g.node");
      if (!node) return;
      var r = node.querySelector("rect.box");
      var x = +r.getAttribute("x"), y = +r.getAttribute("y");
      if (x < current[0] || y < current[1] || x > current[0] + current[2] || y > current[1] + current[3]) {
        current[0] = x + +r.getAttribute("width") / 2 - current[2] / 2;
        current[1] = y - current[3] / 3;
        apply();
      }
      view.scrollIntoView({block: "nearest"});
    });
    nodes(box).forEach(function (n) { n.dataset.label = n.getAttribute("aria-label"); });
    view.style.height = Math.min(full[3] + 2, 640, Math.max(320, window.innerHeight * 0.7)) + "px";
    initial();
  }

  // ------------------------------------------------------------------ badges

  function badge(node, text, kind) {
    var old = node.querySelector("g.badge." + kind);
    if (old) old.remove();
    if (!text) return;
    var r = node.querySelector("rect.box");
    var width = text.length * 6.6 + 12;
    var x = +r.getAttribute("x") + +r.getAttribute("width") - width + 6;
    // Counts sit on the bottom-right corner, "now" on the top-left: both fit a narrow node.
    var y = +r.getAttribute("y") + +r.getAttribute("height") - 8;
    if (kind === "now") { x = +r.getAttribute("x") - 6; y = +r.getAttribute("y") - 9; }
    var g = document.createElementNS(SVG_NS, "g");
    g.setAttribute("class", "badge " + kind);
    var rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", x); rect.setAttribute("y", y);
    rect.setAttribute("width", width); rect.setAttribute("height", 17); rect.setAttribute("rx", 8);
    var label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", x + width / 2); label.setAttribute("y", y + 12.5);
    label.setAttribute("text-anchor", "middle");
    label.textContent = text;
    g.appendChild(rect); g.appendChild(label);
    node.appendChild(g);
  }

  function describe(node, extra) {
    node.setAttribute("aria-label", node.dataset.label + (extra ? ". " + extra : ""));
  }

  // ------------------------------------------------------------------ task page: counts

  // rows: [{status, state, n}] for this task (the ``counts`` message's shape).
  function showCounts(box, rows) {
    var byState = {};
    rows.forEach(function (row) {
      if (!row.state) return;
      var entry = byState[row.state] = byState[row.state] || {n: 0, parts: []};
      entry.n += row.n;
      entry.parts.push(row.status + " " + row.n);
    });
    nodes(box).forEach(function (node) {
      var entry = byState[node.dataset.state];
      var text = entry ? entry.n + (entry.n === 1 ? " run" : " runs") : "";
      node.classList.toggle("has-runs", !!entry);
      node.dataset.runs = entry ? String(entry.n) : "0";
      badge(node, text, "count");
      describe(node, entry ? text + " (" + entry.parts.join(", ") + ")" : "");
    });
  }

  // ------------------------------------------------------------------ run page: the path

  var KIND_OF_TRIGGER = {timeout: "on_timeout", error: "on_error", condition: "transition"};

  function edgeFor(box, t) {
    var kind = KIND_OF_TRIGGER[t.trigger];
    if (!kind || !t.from_state || !t.to_state) return null; // start, cancel, redrive, deadline
    var candidates = edges(box).filter(function (e) {
      return e.dataset.from === t.from_state && e.dataset.to === t.to_state && e.classList.contains(kind);
    });
    return candidates.find(function (e) { return e.dataset.condition === (t.condition_kind || "always"); })
      || candidates[0] || null;
  }

  // transitions: every transition of the run so far ({from_state, to_state, trigger,
  // condition_kind}); current: the run's state now; ended: whether the run is finished.
  function showPath(box, transitions, current, ended) {
    var visits = {}, taken = new Map();
    transitions.forEach(function (t) {
      if (t.to_state) visits[t.to_state] = (visits[t.to_state] || 0) + 1;
      var edge = edgeFor(box, t);
      if (edge) taken.set(edge, (taken.get(edge) || 0) + 1);
    });
    edges(box).forEach(function (edge) {
      var n = taken.get(edge) || 0;
      edge.classList.toggle("taken", n > 0);
      edge.dataset.taken = String(n);
      var text = edge.querySelector("text");
      if (!text.dataset.label) text.dataset.label = text.textContent;
      text.textContent = text.dataset.label + (n ? " ×" + n : "");
    });
    nodes(box).forEach(function (node) {
      var state = node.dataset.state, n = visits[state] || 0;
      var isCurrent = state === current;
      node.classList.toggle("visited", n > 0);
      node.classList.toggle("current", isCurrent);
      node.dataset.visits = String(n);
      badge(node, n ? "×" + n : "", "count");
      badge(node, isCurrent ? (ended ? "■ ended here" : "▶ now") : "", "now");
      var words = [];
      if (isCurrent) words.push(ended ? "the run ended here" : "the run is here now");
      if (n) words.push("entered " + n + (n === 1 ? " time" : " times"));
      describe(node, words.join(", "));
    });
  }

  window.AsyncStatesDiagram = {setup: setup, showCounts: showCounts, showPath: showPath};
  document.querySelectorAll("[data-diagram]").forEach(setup);
})();
