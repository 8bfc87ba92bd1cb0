// The review page's keyboard: move between hunks and decide the current one without the mouse.
// Every key presses a real button or follows a real link of the page (data-key), so the keyboard can do
// nothing the page's forms cannot, and the page works without this file.
(function () {
  "use strict";
  var current = null;

  function hunks(openOnly) {
    var all = Array.prototype.slice.call(document.querySelectorAll(".hunk, .whole-file-card"));
    return openOnly ? all.filter(function (el) { return isOpen(el); }) : all;
  }

  function isOpen(el) {
    if (el.classList.contains("hunk")) return el.dataset.decided === "0";
    var file = el.closest(".review-file");
    return file && file.dataset.remaining !== "0";
  }

  // ``move``: from the keyboard, scroll to it and take the focus. Not on a click: moving the focus off a
  // button being clicked would make htmx forget which button submitted the form.
  function select(el, move) {
    if (current) current.classList.remove("current");
    current = el;
    if (!el) return;
    el.classList.add("current");
    if (!move) return;
    el.scrollIntoView({block: "center"});
    el.focus({preventScroll: true});
    if (history.replaceState && el.id) history.replaceState(null, "", "#" + el.id);
  }

  function step(direction, openOnly) {
    var list = hunks(openOnly);
    if (!list.length) return;
    var all = hunks(false);
    var at = current ? all.indexOf(current) : -1;
    var pick = null;
    for (var i = 1; i <= all.length && !pick; i++) {
      var candidate = all[(at + direction * i + all.length * 2) % all.length];
      if (list.indexOf(candidate) >= 0) pick = candidate;
    }
    select(pick, true);
  }

  function press(key) {
    var scope = current || document;
    var target = scope.querySelector('[data-key="' + key + '"]');
    if (!target) return false;
    if (target.tagName === "SUMMARY") {
      target.parentElement.open = true;
      var area = target.parentElement.querySelector("textarea");
      if (area) area.focus();
    } else {
      target.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
    var tag = evt.target.tagName;
    if (tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT" || evt.target.isContentEditable) return;
    var key = evt.key;
    if (key === "n" || key === "p") { step(key === "n" ? 1 : -1, true); }
    else if (key === "j" || key === "k") { step(key === "j" ? 1 : -1, false); }
    else if (key === "a") { var approve = document.getElementById("approve"); if (approve) approve.focus(); else return; }
    else if ("otbBreu".indexOf(key) >= 0 && key.length === 1) { if (!current || !press(key)) return; }
    else return;
    evt.preventDefault();
  });

  // A click inside a hunk makes it the current one; after a swap, keep going from the same place.
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest && evt.target.closest(".hunk, .whole-file-card");
    if (el) select(el, false);
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (current && !document.body.contains(current) && current.id) {
      current = document.getElementById(current.id);
      if (current) current.classList.add("current");
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var start = location.hash && document.getElementById(location.hash.slice(1));
    if (start && (start.classList.contains("hunk") || start.classList.contains("whole-file-card"))) select(start, true);
  });
})();
