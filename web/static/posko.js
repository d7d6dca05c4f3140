// The guard's screen: live updates (server-sent events, polling as a fallback), the
// on-screen buttons, Darurat's long press, re-check countdowns, and the print button.
// Every word shown comes from the page (data-* attributes), never from this file.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var TOAST_MS = 4000;

  function countdowns(scope) {
    var started = Date.now();
    var items = scope.querySelectorAll("[data-left]");
    if (!items.length) return;
    function tick() {
      var gone = Math.floor((Date.now() - started) / 1000);
      items.forEach(function (item) {
        var left = parseInt(item.dataset.left, 10) - gone;
        if (left <= 0) {
          item.textContent = item.dataset.done;
          item.classList.add("due");
          var row = item.closest(".wait");
          var button = row && row.querySelector("button[data-turn='1']");
          if (button) button.disabled = false;
        } else {
          var b = item.querySelector(".left");
          if (b) b.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
        }
      });
    }
    tick();
    return setInterval(tick, 1000);
  }

  function live(root) {
    var panel = document.getElementById("panel");
    var toast = document.getElementById("toast");
    var csrf = root.dataset.csrf;
    var loading = false, again = false, poller = null;
    var ticking = countdowns(panel);

    function refresh() {
      if (loading) { again = true; return; }
      loading = true;
      fetch(root.dataset.panelUrl, {cache: "no-store", credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          panel.innerHTML = html;  // rendered and escaped by the server
          if (ticking) clearInterval(ticking);
          ticking = countdowns(panel);
          bindForms(panel);
        })
        .catch(function () {})
        .then(function () {
          loading = false;
          if (again) { again = false; refresh(); }
        });
    }

    function poll(on) {
      if (on && !poller) poller = setInterval(refresh, POLL_MS);
      if (!on && poller) { clearInterval(poller); poller = null; }
    }

    function listen() {
      if (!window.EventSource) { poll(true); return; }
      var source = new EventSource(root.dataset.streamUrl);
      source.addEventListener("hello", function () { poll(false); refresh(); });
      source.addEventListener("update", refresh);
      source.onerror = function () { poll(true); };  // the browser may reconnect; poll meanwhile
    }

    function show(answer) {
      toast.textContent = answer.message || root.dataset.error;
      toast.className = "toast toast-" + (answer.pattern || "busy");
      toast.hidden = false;
      clearTimeout(show.timer);
      show.timer = setTimeout(function () { toast.hidden = true; }, TOAST_MS);
    }

    function send(form) {
      return fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}
      }).then(function (r) { return r.json(); })
        .then(show, function () { show({pattern: "busy"}); })
        .then(refresh);
    }

    function bindForms(scope) {
      scope.querySelectorAll("form.press:not(.hold)").forEach(function (form) {
        form.addEventListener("submit", function (e) { e.preventDefault(); send(form); });
      });
    }

    function hold(link) {
      var form = document.getElementById("darurat-form");
      var ms = parseFloat(root.dataset.holdS) * 1000;
      var timer = null, fired = false;
      function start(e) {
        e.preventDefault();
        fired = false;
        link.classList.add("holding");
        link.querySelector(".fill").style.transitionDuration = ms + "ms";
        timer = setTimeout(function () {
          fired = true;
          stop();
          send(form);
        }, ms);
      }
      function stop() {
        clearTimeout(timer);
        link.classList.remove("holding");
      }
      link.addEventListener("pointerdown", start);
      ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) {
        link.addEventListener(name, stop);
      });
      link.addEventListener("contextmenu", function (e) { e.preventDefault(); });
      link.addEventListener("click", function (e) {
        e.preventDefault();
        if (!fired) show({pattern: "denied", message: link.dataset.hint});
      });
    }

    bindForms(document);
    var darurat = document.getElementById("darurat");
    if (darurat) hold(darurat);
    listen();
  }

  var root = document.getElementById("live");
  if (root) live(root);
  else countdowns(document);
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
