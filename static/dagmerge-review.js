// The review page's keyboard, current hunk and live marker count.
// Every key presses a real button or follows a real link of the page (data-key), so the keyboard can do
// nothing the page's forms cannot, and the page works without this file. Viewers have no decision buttons,
// so their keys only move.
(function () {
  "use strict";
  var MARKER = /^<{7}(?: |$)/;
  var currentId = null; // by id: decisions and live pushes replace the elements

  function current() {
    return currentId ? document.getElementById(currentId) : null;
  }

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
    var old = current();
    if (old) old.classList.remove("current");
    currentId = el ? el.id : null;
    if (!el) return;
    el.classList.add("current");
    if (!move) return;
    el.scrollIntoView({block: "center"});
    el.focus({preventScroll: true});
    if (history.replaceState && el.id) history.replaceState(null, "", "#" + el.id);
  }

  // htmx settles a swapped element by putting its new attributes back, which drops the class added here,
  // and the button that had the focus is gone: mark the current hunk again once a swap has settled.
  function restore() {
    var el = current();
    if (!el) return;
    el.classList.add("current");
    var focused = document.activeElement;
    if (!focused || focused === document.body) el.focus({preventScroll: true});
  }

  function step(direction, openOnly) {
    var list = hunks(openOnly);
    if (!list.length) return;
    var all = hunks(false);
    var at = all.indexOf(current());
    var pick = null;
    for (var i = 1; i <= all.length && !pick; i++) {
      var candidate = all[(at + direction * i + all.length * 2) % all.length];
      if (list.indexOf(candidate) >= 0) pick = candidate;
    }
    select(pick, true);
  }

  function press(key) {
    var scope = current();
    var target = scope && scope.querySelector('[data-key="' + key + '"]');
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

  // `a` asks before approving: a stray key must not merge. The dialog's confirm clicks the real button.
  function askApprove() {
    var button = document.getElementById("approve");
    var dialog = document.getElementById("approve-dialog");
    if (!button || button.disabled || !dialog || dialog.open) return false;
    dialog.returnValue = "";
    dialog.showModal();
    return true;
  }

  function countMarkers(area) {
    var pane = area.closest(".result-pane");
    var out = pane && pane.querySelector(".marker-count");
    if (!out) return;
    var n = area.value.split("\n").filter(function (line) { return MARKER.test(line); }).length;
    out.dataset.markers = String(n);
    out.classList.toggle("left", n > 0);
    out.textContent = n ? n + " conflict" + (n === 1 ? "" : "s") + " marked" : "no conflict markers";
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey || document.querySelector("dialog[open]")) return;
    var tag = evt.target.tagName;
    if (tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT" || evt.target.isContentEditable) return;
    var key = evt.key;
    if (key === "n" || key === "p") { step(key === "n" ? 1 : -1, true); }
    else if (key === "j" || key === "k") { step(key === "j" ? 1 : -1, false); }
    else if (key === "a") { if (!askApprove()) return; }
    else if ("otbBreu".indexOf(key) >= 0 && key.length === 1) { if (!press(key)) return; }
    else return;
    evt.preventDefault();
  });

  // A click inside a hunk makes it the current one; after a swap, keep going from the same place.
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest && evt.target.closest(".hunk, .whole-file-card");
    if (el) select(el, false);
  });
  document.addEventListener("input", function (evt) {
    if (evt.target.matches && evt.target.matches("textarea.result-text")) countMarkers(evt.target);
  });
  // Another reviewer's decision arrives live as the file's new section. A section this reviewer is
  // editing (a textarea changed and not saved) is not replaced: it says what changed and offers theirs,
  // keeping the text. (Saving on the old view is refused by the server, which shows both.) The same
  // section again (this reviewer's own decision, echoed) is not swapped at all.
  function edited(el) {
    return Array.prototype.filter.call(el.querySelectorAll("textarea"), function (area) {
      return area.value !== area.defaultValue;
    });
  }

  function where(area) {
    var holder = area.closest(".hunk, .review-file, .panel");
    return (holder ? holder.id : "") + " " + area.name;
  }

  function keepTexts(areas, into) {
    areas.forEach(function (area) {
      var fresh = Array.prototype.find.call(into.querySelectorAll("textarea"), function (candidate) {
        return where(candidate) === where(area);
      });
      if (!fresh) return;
      fresh.value = area.value;
      var details = fresh.closest("details");
      if (details) details.open = true;
    });
  }

  function showConflict(section, fresh, areas) {
    var note = section.querySelector(".live-conflict");
    if (!note) {
      note = document.createElement("div");
      note.className = "notice warning live-conflict";
      note.setAttribute("role", "alert");
      section.insertBefore(note, section.children[1] || null);
    }
    note.textContent = (fresh.dataset.lastChange || "Another reviewer changed this file") +
      ", while you were editing it here. Your text is not saved yet and stays as it is. ";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary show-theirs";
    button.textContent = "Show what is decided now (keeps your text)";
    button.addEventListener("click", function () {
      var texts = edited(section);
      section.replaceWith(fresh);
      keepTexts(texts, fresh);
      htmx.process(fresh);
      restore();
    });
    note.appendChild(button);
  }

  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    var fresh = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    if (!target || !fresh) return;
    var mine = target.classList.contains("review-file") || target.id === "review-summary";
    if (mine && target.querySelector(".htmx-request")) {
      // A decision or an approve from inside it is on its way: its answer brings this part anew, and
      // replacing it now would detach the form, so that htmx could not place the answer's other parts.
      evt.detail.shouldSwap = false;
      return;
    }
    if (target.classList.contains("review-file")) {
      if (fresh.dataset.version && fresh.dataset.version === target.dataset.version) {
        evt.detail.shouldSwap = false;
        return;
      }
      var areas = edited(target);
      if (areas.length) {
        evt.detail.shouldSwap = false;
        showConflict(target, fresh, areas);
      }
    } else if (target.id === "review-summary") {
      keepTexts(edited(target), fresh); // a hint being typed survives the summary's refresh
    }
  });

  ["htmx:afterSettle", "htmx:oobAfterSwap", "htmx:wsAfterMessage"].forEach(function (name) {
    document.addEventListener(name, restore);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.getElementById("approve-dialog");
    if (dialog) {
      dialog.addEventListener("close", function () {
        var button = document.getElementById("approve");
        if (dialog.returnValue === "approve" && button && !button.disabled) button.click();
      });
    }
    var start = location.hash && document.getElementById(location.hash.slice(1));
    if (start && (start.classList.contains("hunk") || start.classList.contains("whole-file-card"))) select(start, true);
  });
})();
