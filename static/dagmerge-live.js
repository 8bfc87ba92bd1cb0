// The live pages' badge, `since` on every (re)connect of the htmx ws extension (so the server sends only
// what changed after the last event this page shows), and polling while the socket is down. On every page:
// the count of merges waiting for a person in the tab's title (and, opted in, a browser notification when
// it grows), and elapsed timers that keep counting.
(function () {
  "use strict";
  var RECONNECTING = [1006, 1011, 1012, 1013]; // the close codes htmx-ws reconnects on
  var POLL_MS = 3000; // while the socket is down (peers: Airflow 3 s, Prefect 1 s, Temporal 10 s)
  var pollTimer = null;
  var polling = false;

  function badge(state, text) {
    var el = document.getElementById("live-badge");
    if (!el) return;
    el.hidden = false;
    el.dataset.state = state;
    el.textContent = text;
  }

  function seq() {
    var el = document.getElementById("ticket-seq");
    return el && el.dataset.seq ? el.dataset.seq : "";
  }

  function withSince(url) {
    var since = seq();
    return since ? url + (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since) : url;
  }

  // One poll: the same out-of-band fragments the socket would have sent, swapped the same way.
  function pollOnce() {
    var live = document.querySelector("[data-poll]");
    if (!live || polling) return;
    polling = true;
    fetch(withSince(live.dataset.poll), {credentials: "same-origin", headers: {"HX-Request": "true"}})
      .then(function (response) {
        if (response.status === 403 || response.redirected) throw new Error("signed out");
        return response.ok ? response.text() : "";
      })
      .then(function (html) {
        if (html) htmx.swap(document.body, html, {swapStyle: "none"});
        if (pollTimer) badge("polling", "reconnecting… (polling every " + POLL_MS / 1000 + " s)");
      })
      .catch(function () { badge("offline", "offline (reload to resume)"); stopPolling(); })
      .finally(function () { polling = false; });
  }

  function startPolling() {
    if (pollTimer || !document.querySelector("[data-poll]")) return;
    pollTimer = setInterval(pollOnce, POLL_MS);
    pollOnce();
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  document.addEventListener("htmx:wsConnecting", function () {
    if (!pollTimer) badge("connecting", "connecting…");
  });
  document.addEventListener("htmx:wsOpen", function () {
    stopPolling();
    badge("live", "live");
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    var closing = evt.detail && evt.detail.event;
    var again = closing && RECONNECTING.indexOf(closing.code) >= 0;
    badge("offline", again ? "reconnecting…" : "offline");
    startPolling();
  });
  // A message was swapped in: tell whoever waits for it (the latency benchmark, tests).
  document.addEventListener("htmx:wsAfterMessage", function () {
    needsYou();
    document.dispatchEvent(new CustomEvent("dagmerge:live", {detail: {seq: seq(), at: performance.now()}}));
  });
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    if (evt.detail && evt.detail.target && evt.detail.target.id === "nav-reviews") needsYou();
  });

  // The tab's title starts with the count of merges waiting for a person, like the navigation's badge.
  var waiting = null;
  function needsYou() {
    var nav = document.getElementById("nav-reviews");
    if (!nav) return;
    var badge = nav.querySelector(".count");
    var count = badge ? parseInt(badge.textContent, 10) || 0 : 0;
    var bare = document.title.replace(/^\(\d+\) /, "");
    document.title = count ? "(" + count + ") " + bare : bare;
    if (waiting !== null && count > waiting && notifying()) {
      new Notification("dagmerge: a merge waits for you", {body: count + " waiting under Reviews", tag: "dagmerge"});
    }
    waiting = count;
  }

  // Notifications are opt-in, per browser: the navigation's "Notify me" asks for the permission.
  var NOTIFY_KEY = "dagmerge-notify";
  function notifying() {
    return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(NOTIFY_KEY) === "1";
  }
  function notifyButton() {
    var button = document.getElementById("notify");
    if (!button || !("Notification" in window)) return;
    button.hidden = false;
    button.textContent = notifying() ? "Notifying" : "Notify me";
    button.setAttribute("aria-pressed", notifying() ? "true" : "false");
    button.onclick = function () {
      if (notifying()) { localStorage.removeItem(NOTIFY_KEY); notifyButton(); return; }
      Notification.requestPermission().then(function (answer) {
        if (answer === "granted") localStorage.setItem(NOTIFY_KEY, "1");
        notifyButton();
      });
    };
  }

  // Live timers: <time class="elapsed" data-since="ISO"> counts on, in the server's duration format.
  function duration(seconds) {
    seconds = Math.max(seconds, 0);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var whole = Math.floor(seconds);
    if (whole < 3600) return Math.floor(whole / 60) + " min " + String(whole % 60).padStart(2, "0") + " s";
    return Math.floor(whole / 3600) + " h " + String(Math.floor(whole % 3600 / 60)).padStart(2, "0") + " min";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.elapsed[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (!isNaN(since)) el.textContent = duration((now - since) / 1000);
    });
  }

  // The ticket list's pager swaps the table in place: the socket follows to the page now shown.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var table = evt.detail && evt.detail.target;
    var socket = document.getElementById("dashboard-socket");
    if (!table || table.id !== "ticket-table" || !socket) return;
    var pager = document.querySelector("#ticket-table [data-page]");
    var page = pager ? pager.dataset.page : "1";
    var url = socket.getAttribute("ws-connect").replace(/page=\d+/, "page=" + page);
    if (url === socket.getAttribute("ws-connect")) return;
    var fresh = socket.cloneNode(false);
    fresh.setAttribute("ws-connect", url);
    fresh.dataset.poll = socket.dataset.poll.replace(/page=\d+/, "page=" + page);
    socket.replaceWith(fresh);
    htmx.process(fresh);
  });

  document.addEventListener("DOMContentLoaded", function () {
    needsYou();
    notifyButton();
    tick();
    setInterval(tick, 1000);
  });

  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      var socket = new WebSocket(withSince(url), []);
      socket.binaryType = htmx.config.wsBinaryType;
      return socket;
    };
  }
})();
