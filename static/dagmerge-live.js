// The ticket page's live badge, and `since` on every (re)connect of the htmx ws extension, so the
// server sends only what changed after the last event this page shows.
(function () {
  "use strict";
  var RECONNECTING = [1006, 1011, 1012, 1013]; // the close codes htmx-ws reconnects on

  function badge(state, text) {
    var el = document.getElementById("live-badge");
    if (!el) return;
    el.hidden = false;
    el.dataset.state = state;
    el.textContent = text;
  }

  document.addEventListener("htmx:wsConnecting", function () { badge("connecting", "connecting…"); });
  document.addEventListener("htmx:wsOpen", function () { badge("live", "live"); });
  document.addEventListener("htmx:wsClose", function (evt) {
    var closing = evt.detail && evt.detail.event;
    var again = closing && RECONNECTING.indexOf(closing.code) >= 0;
    badge("offline", again ? "reconnecting…" : "offline (reload to resume)");
  });

  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      var seq = document.getElementById("ticket-seq");
      if (seq && seq.dataset.seq) {
        url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(seq.dataset.seq);
      }
      var socket = new WebSocket(url, []);
      socket.binaryType = htmx.config.wsBinaryType;
      return socket;
    };
  }
})();
