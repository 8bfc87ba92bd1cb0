// The ticket page, for people: a task's lineage lit up in the graph, and filters on the long tables.
// Progressive: without this file the graph, the tables and their links work the same, only unlit.
(function () {
  "use strict";
  var graph = null; // {parents: {node: [nodes]}, children: {...}}; rebuilt when the graph is swapped
  var pinned = null;
  var lit = null; // the node whose lineage is lit

  function readGraph() {
    var parents = {}, children = {}, nodes = {}, edges = [];
    document.querySelectorAll("#dag g.n").forEach(function (g) {
      var node = g.dataset.n;
      nodes[node] = g;
      parents[node] = g.dataset.p ? g.dataset.p.split(" ") : [];
      children[node] = children[node] || [];
      parents[node].forEach(function (p) { (children[p] = children[p] || []).push(node); });
    });
    document.querySelectorAll("#dag .edges path[data-e]").forEach(function (path) {
      edges.push({el: path, pairs: path.dataset.e.split(" ").map(function (pair) { return pair.split(">"); })});
    });
    return {parents: parents, children: children, nodes: nodes, edges: edges};
  }

  function walk(start, next) {
    var seen = {}, queue = [start];
    while (queue.length) {
      (next[queue.pop()] || []).forEach(function (n) { if (!seen[n]) { seen[n] = true; queue.push(n); } });
    }
    return seen;
  }

  function clear() {
    lit = null;
    var svg = document.querySelector("#dag .dag-svg");
    if (svg) svg.classList.remove("tracing");
    document.querySelectorAll("#dag .on, #task-table .row.on").forEach(function (el) { el.classList.remove("on"); });
    var note = document.getElementById("lineage");
    if (note) note.hidden = true;
  }

  function light(node) {
    graph = graph || readGraph();
    clear();
    lit = node;
    var svg = document.querySelector("#dag .dag-svg");
    if (!svg || !graph.nodes[node]) return;
    var up = walk(node, graph.parents), down = walk(node, graph.children);
    var on = Object.assign({}, up, down);
    on[node] = true;
    svg.classList.add("tracing");
    Object.keys(on).forEach(function (n) {
      if (graph.nodes[n]) graph.nodes[n].classList.add("on");
      var row = /^\d+$/.test(n) && document.getElementById("task-row-" + n);
      if (row) row.classList.add("on");
    });
    function upstream(n) { return up[n] || n === node; }
    function downstream(n) { return down[n] || n === node; }
    graph.edges.forEach(function (edge) {
      if (edge.pairs.some(function (e) { return (upstream(e[0]) && upstream(e[1])) || (downstream(e[0]) && downstream(e[1])); })) {
        edge.el.classList.add("on");
      }
    });
    var note = document.getElementById("lineage");
    if (note) {
      var title = graph.nodes[node].querySelector("title");
      note.textContent = (title ? title.textContent.split(":")[0] : node) + ": " + Object.keys(up).length +
        " upstream, " + Object.keys(down).length + " downstream" + (pinned ? " (click its row again to let go)" : "");
      note.hidden = false;
    }
  }

  function nodeOf(target) {
    var g = target.closest && target.closest("#dag g.n");
    if (g) return g.dataset.n;
    var row = target.closest && target.closest("#task-table .row:not(.head)");
    return row ? row.id.replace("task-row-", "") : null;
  }

  function hover(evt) {
    if (pinned) return;
    var node = nodeOf(evt.target);
    if (node === lit) return;
    if (node) light(node); else clear();
  }

  document.addEventListener("mouseover", hover);
  document.addEventListener("focusin", hover);
  document.addEventListener("click", function (evt) {
    var row = evt.target.closest && evt.target.closest("#task-table .row:not(.head)");
    if (!row || evt.target.closest("a")) return;
    var node = row.id.replace("task-row-", "");
    pinned = pinned === node ? null : node;
    if (pinned) light(pinned); else clear();
  });

  // Filters: rows whose text holds the words and whose status is the one chosen; the rest are hidden.
  function filter(box) {
    var table = document.getElementById(box.dataset.filter);
    if (!table) return;
    var words = box.querySelector("input").value.trim().toLowerCase();
    var status = box.querySelector("select").value;
    var shown = 0, total = 0;
    table.classList.toggle("filtering", !!(words || status));
    table.querySelectorAll(".row:not(.head)").forEach(function (row) {
      var badge = row.querySelector('.badge[class*="st-"]');
      var match = (!words || row.textContent.toLowerCase().indexOf(words) >= 0) &&
        (!status || (badge && badge.classList.contains("st-" + status)));
      row.hidden = !match;
      total += 1;
      shown += match ? 1 : 0;
    });
    box.querySelector(".shown").textContent = words || status ? shown + " of " + total + " shown" : "";
  }

  function refilter(id) {
    document.querySelectorAll('[data-filter="' + id + '"]').forEach(filter);
  }

  document.addEventListener("input", function (evt) {
    var box = evt.target.closest && evt.target.closest("[data-filter]");
    if (box) filter(box);
  });
  document.addEventListener("change", function (evt) {
    var box = evt.target.closest && evt.target.closest("[data-filter]");
    if (box) filter(box);
  });

  // Live swaps: a new graph is read again; a swapped row or table keeps the filter and the lit lineage.
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target) return;
    if (target.id === "dag") { graph = null; if (lit) light(lit); }
    var table = target.closest && target.closest("#task-table, #joins");
    if (table) refilter(table.id);
    if (lit && table && table.id === "task-table") light(lit);
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  });
})();
