// Keeps the server-rendered dashboard pages live over the ws/runs/ websocket
// (dashboard/consumers.py). Plain JavaScript, no build step. Without it the pages are
// snapshots that a reload refreshes; with it they never need one.
(function () {
  "use strict";

  var root = document.querySelector("main[data-live]");
  if (!root || !("WebSocket" in window)) return;

  var page = root.dataset.live; // "index", "task" or "run"
  var since = root.dataset.since || null; // index: news after this time is asked for
  var lastSeq = parseInt(root.dataset.lastSeq || "0", 10); // run: last transition shown
  var indicator = document.getElementById("live");
  var attempt = 0;
  var UNAUTHENTICATED = 4401;

  // ------------------------------------------------------------------ connection

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/runs/");
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "hello") {
        attempt = 0;
        show("live", "live");
        hello(socket);
      } else if (message.type === "run") {
        onRun(message);
      } else if (message.type === "counts") {
        onCounts(message);
      } else if (message.type === "reload") {
        location.reload(); // too much changed while away: a fresh page is exact
      }
    };
    socket.onclose = function (event) {
      if (event.code === UNAUTHENTICATED) {
        show("off", "signed out — reload to log in");
        return;
      }
      // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 30 s.
      attempt += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, attempt - 1)) * (0.75 + Math.random() / 2);
      show("reconnecting", "reconnecting");
      setTimeout(connect, delay);
    };
  }

  function hello(socket) {
    if (page === "run") {
      socket.send(JSON.stringify({type: "watch", run: root.dataset.run, after: lastSeq}));
    } else if (page === "task") {
      socket.send(JSON.stringify({type: "counts"})); // whatever moved while away
    } else if (since) {
      socket.send(JSON.stringify({type: "since", at: since}));
    }
  }

  function show(state, label) {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.className = "live " + state;
    indicator.querySelector(".label").textContent = label;
  }

  // ------------------------------------------------------------------ helpers

  function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") : "–"; }
  function time(iso) { return iso ? Date.parse(iso) : 0; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function pill(status) { return el("span", {"class": "pill status-" + status, text: status}); }

  function flash(node) {
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }

  function setField(container, name, value) {
    var cell = container.querySelector('[data-field="' + name + '"]');
    if (!cell) return;
    if (name === "status") cell.replaceChildren(pill(value));
    else cell.textContent = value;
  }

  // ------------------------------------------------------------------ run messages

  function onRun(run) {
    if (since === null || time(run.updated_at) > time(since)) since = run.updated_at;
    if (page === "run") onWatchedRun(run);
    else onAnyRun(run);
  }

  function onAnyRun(run) {
    var table = document.getElementById("recent-runs");
    if (!table) return;
    var row = table.querySelector('tr[data-run="' + run.id + '"]');
    if (row && time(row.dataset.updated) > time(run.updated_at)) return; // stale news
    if (!row) {
      row = placeNewRow(table, run);
      if (!row) return;
    }
    row.dataset.updated = run.updated_at;
    setField(row, "status", run.status);
    setField(row, "state", run.state || "–");
    setField(row, "finished_at", when(run.finished_at));
    flash(row);
  }

  // A run not on the page yet goes in at its place by creation time, if it is among the
  // most recent ones; the table keeps its length.
  function placeNewRow(table, run) {
    var body = table.tBodies[0];
    var limit = parseInt(root.dataset.limit || "50", 10);
    var rows = Array.prototype.slice.call(body.rows);
    var before = rows.find(function (r) { return time(r.dataset.created) < time(run.created_at); });
    if (!before && rows.length >= limit) return null;
    var row = newRow(run);
    body.insertBefore(row, before || null);
    while (body.rows.length > limit) body.deleteRow(-1);
    table.hidden = false;
    var empty = document.getElementById("no-runs");
    if (empty) empty.hidden = true;
    return row;
  }

  function newRow(run) {
    var row = el("tr", {"data-run": run.id, "data-created": run.created_at});
    var link = el("a", {href: "/runs/" + run.id + "/"}, [el("code", {text: run.id.slice(0, 8) + "…"})]);
    var admin = el("a", {"class": "muted", href: "/admin/taskapp/run/" + run.id + "/change/", text: "admin"});
    row.appendChild(el("td", {}, [link, document.createTextNode(" "), admin]));
    row.appendChild(el("td", {text: run.task + " v" + run.version}));
    row.appendChild(el("td", {"data-field": "status"}));
    row.appendChild(el("td", {"data-field": "state"}));
    row.appendChild(el("td", {text: when(run.created_at)}));
    row.appendChild(el("td", {"data-field": "finished_at"}));
    return row;
  }

  function onWatchedRun(run) {
    if (run.id !== root.dataset.run) return;
    if (time(root.dataset.updated) <= time(run.updated_at)) {
      root.dataset.updated = run.updated_at;
      var fields = document.querySelector("table.fields");
      setField(fields, "status", run.status);
      setField(fields, "state", run.state || "–");
      setField(fields, "updated_at", when(run.updated_at));
      setField(fields, "finished_at", when(run.finished_at));
    }
    var body = document.querySelector("#transitions tbody");
    run.transitions.forEach(function (t) {
      if (t.seq <= lastSeq) return;
      lastSeq = t.seq;
      var row = el("tr", {"data-seq": String(t.seq), "data-from": t.from_state || "",
                          "data-to": t.to_state || "", "data-trigger": t.trigger,
                          "data-condition": t.condition_kind || ""}, [
        el("td", {text: String(t.seq)}), el("td", {text: when(t.at)}),
        el("td", {text: t.from_state || "∅"}), el("td", {text: t.to_state || "∅"}),
        el("td", {text: t.trigger}), el("td", {text: t.condition_kind || "–"}),
        el("td", {text: t.time_in_state.toFixed(3) + " s"})]);
      body.appendChild(row);
      flash(row);
    });
    var box = document.querySelector("[data-diagram]");
    if (box) {
      box.dataset.current = run.state || "";
      box.dataset.ended = run.finished_at ? "true" : "false";
      showRunPath(box);
    }
  }

  // ------------------------------------------------------------------ diagrams

  // The run's path on its diagram, from the transitions table (server-rendered rows and the
  // ones appended live): one source of truth for both.
  function showRunPath(box) {
    if (!window.AsyncStatesDiagram) return;
    var rows = document.querySelectorAll("#transitions tbody tr");
    var transitions = Array.prototype.map.call(rows, function (row) {
      return {from_state: row.dataset.from, to_state: row.dataset.to,
              trigger: row.dataset.trigger, condition_kind: row.dataset.condition};
    });
    window.AsyncStatesDiagram.showPath(box, transitions, box.dataset.current,
                                       box.dataset.ended === "true");
  }

  function showTaskCounts(rows) {
    var box = document.querySelector("[data-diagram]");
    if (box && window.AsyncStatesDiagram) window.AsyncStatesDiagram.showCounts(box, rows);
    var line = document.getElementById("task-runs");
    if (!line) return;
    var pills = rows.map(function (r) {
      return el("span", {"class": "pill status-" + r.status,
                         text: r.status + (r.state ? " · " + r.state : "") + ": " + r.n});
    });
    if (!pills.length) pills = [el("span", {"class": "muted", text: "no runs yet"})];
    line.replaceChildren.apply(line, [document.createTextNode("Runs now: ")].concat(pills));
  }

  // ------------------------------------------------------------------ counts

  function onCounts(message) {
    if (page === "task") {
      showTaskCounts(message.states[root.dataset.task] || []);
      return;
    }
    Object.keys(message.status).forEach(function (status) {
      var item = document.querySelector('#status-counts [data-status="' + status + '"]');
      if (!item) return;
      var n = item.querySelector(".n");
      if (n.textContent !== String(message.status[status])) {
        n.textContent = message.status[status];
        flash(item);
      }
    });
    document.querySelectorAll("#tasks tr[data-task]").forEach(function (row) {
      var rows = message.states[row.dataset.task] || [];
      var cell = row.querySelector(".states");
      var pills = rows.map(function (r) {
        return el("span", {"class": "pill status-" + r.status,
                           text: r.status + (r.state ? " · " + r.state : "") + ": " + r.n});
      });
      if (!pills.length) pills = [el("span", {"class": "muted", text: "no runs yet"})];
      var before = cell.textContent.replace(/\s+/g, " ").trim();
      cell.replaceChildren.apply(cell, pills);
      if (cell.textContent.replace(/\s+/g, " ").trim() !== before) flash(row);
    });
  }

  var diagramBox = document.querySelector("[data-diagram]");
  if (diagramBox && page === "run") showRunPath(diagramBox);
  var initialCounts = document.getElementById("task-counts");
  if (initialCounts && page === "task") showTaskCounts(JSON.parse(initialCounts.textContent));

  connect();
})();
