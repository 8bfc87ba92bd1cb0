// The live pages' badge, `since` on every (re)connect of the htmx ws extension (so the server sends only
// what changed after the last event this page shows), and polling while the socket is down.
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
    document.dispatchEvent(new CustomEvent("dagmerge:live", {detail: {seq: seq(), at: performance.now()}}));
  });

  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      var socket = new WebSocket(withSince(url), []);
      socket.binaryType = htmx.config.wsBinaryType;
      return socket;
    };
  }
})();
