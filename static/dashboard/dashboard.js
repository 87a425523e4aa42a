// Keeps the server-rendered dashboard pages live over the ws/runs/ websocket
// (dashboard/consumers.py). Plain JavaScript, no build step. Without it the pages are
// snapshots that a reload refreshes; with it they never need one.
(function () {
  "use strict";

  setUpControls();
  var root = document.querySelector("main[data-live]");
  if (!root || !("WebSocket" in window)) return;

  var page = root.dataset.live; // "index", "task" or "run"
  var since = root.dataset.since || null; // index: news after this time is asked for
  var lastSeq = parseInt(root.dataset.lastSeq || "0", 10); // run: last transition shown
  var indicator = document.getElementById("live");
  var attempt = 0;
  var UNAUTHENTICATED = 4401;
  // For tests and the curious: the open socket and how many times the page (re)connected.
  var live = window.AsyncStatesLive = {socket: null, connections: 0};

  // ------------------------------------------------------------------ connection

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/runs/");
    live.socket = socket;
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "hello") {
        attempt = 0;
        live.connections += 1;
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
      refreshPanels(); // whatever the run's attempts, polls and data did while away
      socket.send(JSON.stringify({type: "watch", run: root.dataset.run, after: lastSeq}));
    } else if (page === "task") {
      socket.send(JSON.stringify({type: "counts"})); // whatever moved while away
    } else if (since) { // index, runs list, overview
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
    else if (page === "runs") onListedRun(run);
    else onAnyRun(run);
    if (page === "index") scheduleOverview();
  }

  // The runs list: rows on the page are updated in place; a run that is not on the page
  // is never inserted (it may not match the filters, and would shift the pages): a run
  // started after the page loaded only raises the "new runs" notice on the first page.
  function onListedRun(run) {
    var row = document.querySelector('#runs tr[data-run="' + run.id + '"]');
    if (!row) {
      var notice = document.getElementById("new-runs");
      if (notice && root.dataset.firstPage && time(run.created_at) > time(root.dataset.since)) notice.hidden = false;
      return;
    }
    if (time(row.dataset.updated) > time(run.updated_at)) return; // stale news
    row.dataset.updated = run.updated_at;
    setField(row, "status", run.status);
    setField(row, "state", run.state || "–");
    var since = row.querySelector('[data-field="in_state"] [data-since]');
    if (since && run.state_entered_at) since.dataset.since = run.state_entered_at;
    if (since && run.finished_at) since.dataset.until = run.finished_at;
    tick();
    flash(row);
  }

  function runLink(id) {
    return el("span", {"class": "run-id"}, [
      el("a", {href: "/runs/" + id + "/"}, [el("code", {text: id})]),
      el("button", {type: "button", "class": "copy", "data-copy": id,
                    "aria-label": "Copy run id " + id, title: "Copy", text: "Copy"})]);
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
    var admin = el("a", {"class": "muted", href: "/admin/taskapp/run/" + run.id + "/change/", text: "admin"});
    row.appendChild(el("td", {}, [runLink(run.id), document.createTextNode(" "), admin]));
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
    showActions(run.status);
    refreshPanels();
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
  // The task page draws a dry run's path the same way, from its table ("sim-transitions").
  function showRunPath(box, tableId) {
    if (!window.AsyncStatesDiagram) return;
    var rows = document.querySelectorAll("#" + (tableId || "transitions") + " tbody tr");
    var transitions = Array.prototype.map.call(rows, function (row) {
      return {from_state: row.dataset.from, to_state: row.dataset.to,
              trigger: row.dataset.trigger, condition_kind: row.dataset.condition};
    });
    window.AsyncStatesDiagram.showPath(box, transitions, box.dataset.current,
                                       box.dataset.ended === "true");
  }

  function showTaskCounts(rows) {
    var box = document.querySelector("[data-diagram]");
    // A dry run's path owns the diagram's badges: the counts stay in the line of pills.
    if (box && window.AsyncStatesDiagram && !box.hasAttribute("data-simulated")) {
      window.AsyncStatesDiagram.showCounts(box, rows);
    }
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

  // ------------------------------------------------------------------ run page panels

  // The run page's panels (fields, input and data, attempts, polls, events, wake-up) are
  // server-rendered HTML: after each change of the run the page fetches them again
  // (/runs/<id>/panels/) and swaps them in. At most one fetch at a time, and one more
  // after it when news arrived meanwhile, so a burst of transitions costs two fetches.
  var panelsBusy = false, panelsAgain = false;

  function refreshPanels() {
    if (page !== "run" || !root.dataset.panels) return;
    if (panelsBusy) { panelsAgain = true; return; }
    panelsBusy = true;
    fetch(root.dataset.panels, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) swapPanels(html); })
      .catch(function () { /* the next change or reconnection fetches again */ })
      .then(function () {
        panelsBusy = false;
        if (panelsAgain) { panelsAgain = false; refreshPanels(); }
      });
  }

  function swapPanels(html) {
    var current = document.getElementById("run-panels");
    var next = new DOMParser().parseFromString(html, "text/html").getElementById("run-panels");
    if (!current || !next) return;
    if (time(next.dataset.updated) < time(current.dataset.updated)) return; // older news
    current.replaceWith(document.adoptNode(next));
    showActions(next.dataset.status);
    tick();
  }

  // Which actions apply: cancel and events while the run is active, redrive once it
  // failed, timed out or was cancelled (the server checks again: this is only the view).
  var ACTIVE = ["pending", "running", "waiting"];
  var REDRIVABLE = ["failed", "timed_out", "cancelled"];

  function showActions(status) {
    document.querySelectorAll("[data-show-when]").forEach(function (node) {
      var when = node.dataset.showWhen;
      node.hidden = !((when === "active" && ACTIVE.indexOf(status) >= 0) ||
                      (when === "redrivable" && REDRIVABLE.indexOf(status) >= 0) ||
                      when === status);
    });
  }

  // ------------------------------------------------------------------ overview

  var overviewTimer = null;

  // The overview's charts and attention list are server-rendered; they are fetched again
  // at most every 5 s while runs change, and every 30 s anyway (the last hour slides).
  function scheduleOverview() {
    if (overviewTimer !== null || !root.dataset.panels) return;
    overviewTimer = setTimeout(function () {
      overviewTimer = null;
      fetch(root.dataset.panels, {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("overview-panels");
          var current = document.getElementById("overview-panels");
          if (next && current) current.replaceWith(document.adoptNode(next));
          tick();
        })
        .catch(function () {});
    }, 5000);
  }
  if (page === "index") setInterval(scheduleOverview, 30000);

  var diagramBox = document.querySelector("[data-diagram]");
  if (diagramBox && page === "run") showRunPath(diagramBox);
  if (diagramBox && diagramBox.hasAttribute("data-simulated")) showRunPath(diagramBox, "sim-transitions");
  var initialCounts = document.getElementById("task-counts");
  if (initialCounts && page === "task") showTaskCounts(JSON.parse(initialCounts.textContent));

  connect();
})();

// Controls that work with or without the websocket: copy buttons, live durations and
// countdowns, the confirmation of actions, picking a redrive state on the diagram.
function setUpControls() {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(button.dataset.copy).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = button.dataset.copy;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* selected: Ctrl+C works */ }
      area.remove();
    }
  });
  setUpConfirmations();
  setUpRedrivePicking();
  window.setInterval(tick, 1000);
  tick();
}

function human(seconds) {
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  var whole = Math.floor(seconds);
  var units = [["d", 86400, "h", 3600], ["h", 3600, "min", 60], ["min", 60, "s", 1]];
  for (var i = 0; i < units.length; i++) {
    var u = units[i];
    if (whole >= u[1]) {
      var rest = Math.floor((whole % u[1]) / u[3]);
      return Math.floor(whole / u[1]) + " " + u[0] + " " + (rest < 10 ? "0" : "") + rest + " " + u[2];
    }
  }
  return whole + " s";
}

// Every second: durations since a time ([data-since], up to [data-until] if set) and
// countdowns to one ([data-countdown]).
function tick() {
  var now = Date.now();
  document.querySelectorAll("[data-since]").forEach(function (node) {
    if (node.tagName === "MAIN") return;
    var end = node.dataset.until ? Date.parse(node.dataset.until) : now;
    node.textContent = human(Math.max(0, (end - Date.parse(node.dataset.since)) / 1000));
  });
  document.querySelectorAll("[data-countdown]").forEach(function (node) {
    var left = (Date.parse(node.dataset.countdown) - now) / 1000;
    node.textContent = left > 0.5 ? "in " + human(left) : "due now";
  });
}

// A form with data-confirm asks first, in a dialog; "yes" submits it with confirmed=yes.
// Without JavaScript the server answers a confirmation page instead.
function setUpConfirmations() {
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  var pending = null;
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.elements.confirmed.value === "yes") return;
      event.preventDefault();
      pending = form;
      document.getElementById("confirm-text").textContent = form.dataset.confirm;
      dialog.showModal();
      document.getElementById("confirm-no").focus();
    });
  });
  dialog.addEventListener("close", function () {
    if (pending && dialog.returnValue === "ok") {
      pending.elements.confirmed.value = "yes";
      pending.submit();
    }
    pending = null;
  });
}

// On a run that can be redriven, clicking a state on the diagram (or pressing Enter on a
// focused one) chooses it in the redrive form.
function setUpRedrivePicking() {
  var select = document.getElementById("redrive-state");
  var svg = document.querySelector("[data-diagram] svg.diagram");
  if (!select || !svg) return;
  var choices = Array.prototype.map.call(select.options, function (o) { return o.value; });
  function mark() {
    svg.querySelectorAll("g.node").forEach(function (node) {
      node.classList.toggle("redrive-target", node.dataset.state === select.value);
    });
  }
  function pick(event) {
    var form = document.getElementById("redrive-form");
    // The view captures the pointer (to pan), so a click's target is the view: ask what
    // lies under the pointer instead.
    var target = event.type === "click" ? document.elementFromPoint(event.clientX, event.clientY) : event.target;
    var node = target && target.closest && target.closest("g.node[data-state]");
    if (!node || !form || form.hidden || choices.indexOf(node.dataset.state) < 0) return;
    if (event.type === "keydown" && event.key !== "Enter") return;
    select.value = node.dataset.state;
    mark();
    select.focus();
  }
  var view = svg.closest(".diagram-view") || svg;
  view.addEventListener("click", pick);
  view.addEventListener("keydown", pick);
  select.addEventListener("change", mark);
  var form = document.getElementById("redrive-form");
  if (form && !form.hidden) { svg.classList.add("picking"); mark(); }
}
